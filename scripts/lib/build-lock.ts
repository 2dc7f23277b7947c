// One build at a time per output directory, across processes (two test files, or a test and
// `npm run guest-image`, may ask at once): the second waits for the first, then finds the image built.
//
// The lock is the one xenosd uses for its data dir: a tiny SQLite database held in exclusive locking mode
// takes a POSIX (fcntl) lock that the kernel drops when the holder ends, however it ends, so a crashed
// build never leaves a stale lock behind and no pid is trusted to tell who holds it.

import { setTimeout as sleep } from 'node:timers/promises';
import { tryExclusiveLock } from '../../src/daemon/data-dir-lock.ts';
import { BuildError } from './build-error.ts';

const POLL_MS = 250;

export interface HeldLock {
  release(): void;
}

/** Takes the lock at `path`, polling while another process holds it, for at most `timeoutMs`. */
export async function acquireBuildLock(
  path: string,
  timeoutMs: number,
  onWait?: () => void,
): Promise<HeldLock> {
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    let db: ReturnType<typeof tryExclusiveLock>;
    try {
      db = tryExclusiveLock(path);
    } catch (err) {
      throw new BuildError((err as Error).message);
    }
    if (db) {
      const held = db;
      return { release: () => held.close() };
    }
    if (Date.now() > deadline) {
      throw new BuildError(`another build holds ${path} for over ${timeoutMs / 1000} s`);
    }
    if (!told) onWait?.();
    told = true;
    await sleep(POLL_MS);
  }
}
