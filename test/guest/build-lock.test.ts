// The build lock of the builders under scripts/ (scripts/lib/build-lock.ts): a second taker waits until
// the first lets go, gives up with a clear error after its time limit, and a holder killed with SIGKILL
// leaves no stale lock behind (the kernel drops its fcntl lock), so the next build never waits on a dead one.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireBuildLock } from '../../scripts/lib/build-lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'xenos-build-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const LOCK_MODULE = join(import.meta.dirname, '..', '..', 'scripts', 'lib', 'build-lock.ts');

describe('the build lock', () => {
  it('makes a second taker wait for the first, and time out with a message naming the lock', async () => {
    const path = join(dir, 'a.lock');
    const first = await acquireBuildLock(path, 1000);
    let waited = false;
    await expect(acquireBuildLock(path, 600, () => (waited = true))).rejects.toThrow(
      `another build holds ${path} for over 0.6 s`,
    );
    expect(waited).toBe(true);
    const second = acquireBuildLock(path, 10_000);
    first.release();
    (await second).release();
  });

  it('is free at once when its holder is killed', async () => {
    const path = join(dir, 'b.lock');
    const holder = spawn(
      process.execPath,
      [
        '--disable-warning=ExperimentalWarning',
        '--input-type=module',
        '-e',
        `const { acquireBuildLock } = await import(${JSON.stringify(LOCK_MODULE)});
         await acquireBuildLock(${JSON.stringify(path)}, 5000);
         console.log('held');
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (d) => String(d).includes('held') && resolve());
        holder.once('exit', (code) => reject(new Error(`the holder exited with ${code} before holding`)));
      });
      await expect(acquireBuildLock(path, 300)).rejects.toThrow(/another build holds/);
      holder.kill('SIGKILL');
      await new Promise((resolve) => holder.once('exit', resolve));
      const lock = await acquireBuildLock(path, 300);
      lock.release();
    } finally {
      holder.kill('SIGKILL');
    }
  });
});
