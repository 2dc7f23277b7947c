// One guest build at a time per output directory, across processes (two test files, or a test and
// `npm run guest-image`, may ask at once): the second waits for the first, then finds the image built.
//
// The lock is the one xenosd uses for its data dir: a tiny SQLite database held in exclusive locking mode
// takes a POSIX (fcntl) lock that the kernel drops when the holder ends, however it ends, so a crashed
// build never leaves a stale lock behind and no pid is trusted to tell who holds it.

import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { GuestBuildError } from './errors.ts';

/** SQLITE_BUSY: another connection holds a conflicting lock. */
const SQLITE_BUSY = 5;
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
    const db = new DatabaseSync(path, { timeout: 0 });
    try {
      db.exec('PRAGMA locking_mode = EXCLUSIVE');
      db.exec('PRAGMA journal_mode = OFF');
      db.exec('BEGIN EXCLUSIVE');
      db.exec('COMMIT');
      return { release: () => db.close() };
    } catch (err) {
      db.close();
      if ((err as { errcode?: number }).errcode !== SQLITE_BUSY) {
        throw new GuestBuildError(`cannot lock ${path}: ${(err as Error).message}`);
      }
    }
    if (Date.now() > deadline) {
      throw new GuestBuildError(`another guest build holds ${path} for over ${timeoutMs / 1000} s`);
    }
    if (!told) onWait?.();
    told = true;
    await sleep(POLL_MS);
  }
}
