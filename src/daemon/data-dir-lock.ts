// One owner per data dir. Two xenosd on one directory would both write state.db, both adopt and start
// the same domains and both answer as the same host, so the first thing a daemon does is take this lock,
// and a second daemon on the same directory refuses to start, naming the holder.
//
// Mechanism: Node has no flock, so the lock is SQLite's: DATA_DIR/xenosd.lock is a tiny SQLite database
// held open in exclusive locking mode after a `BEGIN EXCLUSIVE`, which takes a POSIX (fcntl) write lock
// on the file and keeps it until the connection closes. The kernel drops that lock when the process ends,
// however it ends (exit, crash, kill -9, OOM), so a stale lock cannot exist and a restart is never
// blocked by a dead holder; no pid is ever used to decide who holds it, so a recycled pid cannot be taken
// for the holder. SQLite also refuses a second connection in the same process (its own per-inode lock
// table), so two Daemons in one test process exclude each other too. The lock is not inherited by the
// domains xenosd spawns (fcntl locks belong to one process; SQLite opens with O_CLOEXEC).
//
// Beside it, DATA_DIR/xenosd.pid records the holder — `{"pid":…,"startTime":…,"startedAt":…}`, written
// after the lock is taken — only to name the holder in the refusal. The start time (field 22 of
// /proc/PID/stat) tells a live holder from a recycled pid: a record whose pid now belongs to another
// process is not named. Nothing in this process may open xenosd.lock by any other means: closing any
// descriptor of a file drops every POSIX lock this process holds on it.

import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { readStatSync } from '../drivers/process/proc.ts';
import { DataDirLockedError } from './errors.ts';

export const LOCK_FILE = 'xenosd.lock';
export const HOLDER_FILE = 'xenosd.pid';
/** SQLITE_BUSY: another connection holds a conflicting lock. */
const SQLITE_BUSY = 5;

/** Takes the lock file at `path` (the mechanism above) without waiting: the held connection (close it
 *  to let go), or undefined when another connection holds it. Other failures throw. The guest-image
 *  builder's lock is this one too. */
export function tryExclusiveLock(path: string): DatabaseSync | undefined {
  // timeout 0: fail at once instead of waiting for the holder.
  const db = new DatabaseSync(path, { timeout: 0 });
  try {
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    db.exec('PRAGMA journal_mode = OFF');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('COMMIT');
    return db;
  } catch (err) {
    db.close();
    if ((err as { errcode?: number }).errcode === SQLITE_BUSY) return undefined;
    throw new Error(`cannot lock ${path}: ${(err as Error).message}`, { cause: err });
  }
}

interface Holder {
  pid: number;
  /** Start time of the process in clock ticks after boot (Linux), to tell it from a recycled pid. */
  startTime?: number;
  startedAt: string;
}

export class DataDirLock {
  readonly dataDir: string;
  #db?: DatabaseSync;

  private constructor(dataDir: string, db: DatabaseSync) {
    this.dataDir = dataDir;
    this.#db = db;
  }

  /** Takes the lock of `dataDir` (which must exist) or throws DataDirLockedError naming the holder. */
  static acquire(dataDir: string): DataDirLock {
    const db = tryExclusiveLock(join(dataDir, LOCK_FILE));
    if (!db) throw lockedError(dataDir);
    const lock = new DataDirLock(dataDir, db);
    const holder: Holder = {
      pid: process.pid,
      startTime: readStatSync(process.pid)?.startTime,
      startedAt: new Date().toISOString(),
    };
    const file = join(dataDir, HOLDER_FILE);
    writeFileSync(`${file}.tmp`, `${JSON.stringify(holder)}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
    return lock;
  }

  get held(): boolean {
    return this.#db !== undefined;
  }

  /** Gives the lock up (the holder record goes first, so it never names a process that let go). */
  release(): void {
    if (!this.#db) return;
    rmSync(join(this.dataDir, HOLDER_FILE), { force: true });
    this.#db.close();
    this.#db = undefined;
  }
}

/** The refusal, naming the holder when its record names a live process with the recorded start time. */
function lockedError(dataDir: string): DataDirLockedError {
  const holder = readHolder(dataDir);
  const what = `another xenosd is using data dir ${dataDir}`;
  const todo = 'stop it first, or give this one its own --data-dir';
  if (!holder) {
    return new DataDirLockedError(
      `${what} (it holds ${join(dataDir, LOCK_FILE)}; ${HOLDER_FILE} names no live process yet); ${todo}`,
    );
  }
  return new DataDirLockedError(
    `${what}: pid ${holder.pid}, running since ${holder.startedAt}; ${todo}`,
    holder.pid,
  );
}

function readHolder(dataDir: string): Holder | undefined {
  let holder: Holder;
  try {
    holder = JSON.parse(readFileSync(join(dataDir, HOLDER_FILE), 'utf8')) as Holder;
  } catch {
    return undefined;
  }
  if (!Number.isInteger(holder.pid) || holder.pid <= 0) return undefined;
  const stat = readStatSync(holder.pid);
  if (!stat || stat.state === 'Z') return undefined;
  // A record without a start time (not Linux) cannot be checked; one whose pid now names a process that
  // started at another time is a previous holder's, and that pid was recycled.
  if (holder.startTime !== undefined && stat.startTime !== holder.startTime) return undefined;
  return holder;
}
