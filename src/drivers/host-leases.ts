// Machine-wide leases of numbers that must be unique on one machine across every xenosd running on it:
// the uid of each sandboxed domain, and each domain's host ports (several xenosd share one machine in
// `npm start` and in the tests). One small SQLite database in a machine-wide directory (/run/xenos when
// root; a per-user runtime directory otherwise) holds them; every allocation is one `BEGIN IMMEDIATE`
// transaction, so two processes can never take the same number (SQLite's file lock, released by the kernel
// when a process dies, is the arbiter: no hand-made lock files that a crash would leave behind).
//
// A lease belongs to an owner — a domain's directory — and stays valid while that directory holds its
// record (domain.json), or while the process that took it still lives (it may not have written the record
// yet). A lease whose owner has neither is stale and is reclaimed by the next allocation that needs the
// number; the driver also releases a domain's leases when it destroys the domain. /run is emptied at boot,
// together with every process that could have held a lease.

import { existsSync, mkdirSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { allRows } from '../store/sqlite-rows.ts';
import { readStatSync } from './process/proc.ts';

export type LeaseKind = 'uid' | 'port/TCP' | 'port/UDP' | 'xen-address';

export interface HostLeasesInit {
  /** The machine-wide directory. Default: /run/xenos as root, else $XDG_RUNTIME_DIR/xenos or /tmp/xenos-<uid>. */
  dir?: string;
  /** How long a transaction waits for another process's. Default 10 s. */
  busyTimeoutMs?: number;
}

/** The machine-wide directory leases live in for this user. */
export function defaultLeaseDir(): string {
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return '/run/xenos';
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime ? join(runtime, 'xenos') : `/tmp/xenos-${uid}`;
}

interface LeaseRow {
  kind: string;
  value: number;
  owner: string;
  pid: number;
  start_time: number;
}

export class HostLeases {
  readonly dir: string;
  private readonly busyTimeoutMs: number;
  private db?: DatabaseSync;
  private readonly myStartTime: number;

  constructor(init: HostLeasesInit = {}) {
    this.dir = init.dir ?? defaultLeaseDir();
    this.busyTimeoutMs = init.busyTimeoutMs ?? 10_000;
    this.myStartTime = readStatSync(process.pid)?.startTime ?? 0;
  }

  private open(): DatabaseSync {
    if (this.db) return this.db;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const db = new DatabaseSync(join(this.dir, 'leases.db'));
    // WAL with synchronous=NORMAL: a commit does not wait for the disk (the directory is not always a
    // tmpfs: /run is plain disk on some machines, where a synchronous commit cost 13-15 ms of the event
    // loop per lease, several per domain start). A xenosd crash loses nothing; a power loss may lose the
    // last leases, whose processes died with the machine anyway, and never corrupts the file.
    db.exec(`PRAGMA busy_timeout = ${this.busyTimeoutMs}; PRAGMA synchronous = NORMAL;`);
    try {
      db.exec('PRAGMA journal_mode = WAL');
    } catch {
      // Another xenosd holds the file in the old mode right now: the next start converts it.
    }
    db.exec(`
      CREATE TABLE IF NOT EXISTS leases (
        kind TEXT NOT NULL, value INTEGER NOT NULL, owner TEXT NOT NULL,
        pid INTEGER NOT NULL, start_time INTEGER NOT NULL, PRIMARY KEY (kind, value));
      CREATE INDEX IF NOT EXISTS leases_owner ON leases (owner);`);
    this.db = db;
    return db;
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }

  private transaction<T>(fn: (db: DatabaseSync) => T): T {
    const db = this.open();
    db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn(db);
      db.exec('COMMIT');
      return out;
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
  }

  /** A lease is held while its owner's record exists or the process that took it lives. */
  private held(row: LeaseRow): boolean {
    if (existsSync(join(row.owner, 'domain.json'))) return true;
    const stat = readStatSync(row.pid);
    return stat !== undefined && stat.startTime === row.start_time && stat.state !== 'Z';
  }

  private insert(db: DatabaseSync, kind: LeaseKind, value: number, owner: string): void {
    db.prepare(
      'INSERT OR REPLACE INTO leases (kind, value, owner, pid, start_time) VALUES (?, ?, ?, ?, ?)',
    ).run(kind, value, owner, process.pid, this.myStartTime);
  }

  /** The values `owner` holds of `kind`. */
  heldBy(owner: string, kind: LeaseKind): number[] {
    const rows = this.open()
      .prepare('SELECT value FROM leases WHERE owner = ? AND kind = ? ORDER BY value')
      .all(owner, kind) as { value: number }[];
    return rows.map((r) => r.value);
  }

  /**
   * Takes `value` for `owner` unless another live owner holds it. True when `owner` holds it afterwards.
   * A stale lease on it is replaced; `inUse` (checked only then) may veto reclaiming it.
   */
  tryTake(kind: LeaseKind, value: number, owner: string, inUse?: (value: number) => boolean): boolean {
    return this.transaction((db) => {
      const row = db.prepare('SELECT * FROM leases WHERE kind = ? AND value = ?').get(kind, value) as
        | LeaseRow
        | undefined;
      if (row && row.owner === owner) return true;
      if (row && (this.held(row) || inUse?.(value))) return false;
      this.insert(db, kind, value, owner);
      return true;
    });
  }

  /**
   * One value of `kind` in [first, last] for `owner`: the one it already holds, else the lowest free one,
   * else (with `reclaim`) the lowest stale one that `inUse` does not veto. Undefined when none is free.
   */
  takeFromRange(
    kind: LeaseKind,
    first: number,
    last: number,
    owner: string,
    reclaim?: { inUse: (value: number) => boolean },
  ): number | undefined {
    return this.transaction((db) => {
      const mine = db
        .prepare('SELECT value FROM leases WHERE owner = ? AND kind = ? AND value BETWEEN ? AND ? LIMIT 1')
        .get(owner, kind, first, last) as { value: number } | undefined;
      if (mine) return mine.value;
      const rows = allRows<LeaseRow>(
        db.prepare('SELECT * FROM leases WHERE kind = ? AND value BETWEEN ? AND ? ORDER BY value'),
        kind,
        first,
        last,
      );
      let candidate = first;
      for (const row of rows) {
        if (row.value > candidate) break;
        candidate = row.value + 1;
      }
      if (candidate <= last) {
        this.insert(db, kind, candidate, owner);
        return candidate;
      }
      if (!reclaim) return undefined;
      for (const row of rows) {
        if (this.held(row) || reclaim.inUse(row.value)) continue;
        this.insert(db, kind, row.value, owner);
        return row.value;
      }
      return undefined;
    });
  }

  /** Gives up `owner`'s leases of `kind` (all kinds when absent), except the values in `keep`. */
  release(owner: string, kind?: LeaseKind, keep: number[] = []): void {
    this.transaction((db) => {
      const rows = (
        kind
          ? db.prepare('SELECT kind, value FROM leases WHERE owner = ? AND kind = ?').all(owner, kind)
          : db.prepare('SELECT kind, value FROM leases WHERE owner = ?').all(owner)
      ) as { kind: string; value: number }[];
      const del = db.prepare('DELETE FROM leases WHERE kind = ? AND value = ? AND owner = ?');
      for (const r of rows) if (!keep.includes(r.value)) del.run(r.kind, r.value, owner);
    });
  }
}

/** The uids of every process on this machine (from /proc/<pid>/status), to never reuse a uid still running. */
export async function runningUids(): Promise<Set<number>> {
  const out = new Set<number>();
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const status = await readFile(`/proc/${name}/status`, 'utf8').catch(() => '');
    const m = /^Uid:\s+(\d+)/m.exec(status);
    if (m) out.add(Number(m[1]));
  }
  return out;
}
