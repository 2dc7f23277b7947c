// Child process for data-dir.test.ts: takes the data dir lock of argv[2] the way xenosd does, then, when
// argv[3] is `forge`, overwrites the holder record so that it names the parent (a live process that does
// not hold the lock) with a start time that is not the parent's, as a recycled pid would. Prints `held`
// and waits to be killed.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataDirLock, HOLDER_FILE } from '../../src/daemon/data-dir-lock.ts';

const [dir, mode] = process.argv.slice(2);
DataDirLock.acquire(dir);
if (mode === 'forge') {
  writeFileSync(
    join(dir, HOLDER_FILE),
    `${JSON.stringify({ pid: process.ppid, startTime: 1, startedAt: '2000-01-01T00:00:00.000Z' })}\n`,
  );
}
process.stdout.write('held\n');
setInterval(() => {}, 60_000);
