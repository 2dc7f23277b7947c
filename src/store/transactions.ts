// Transactions on the store's SQLite connection, and group commit. run() makes a piece of work atomic:
// its own BEGIN IMMEDIATE … COMMIT, or a savepoint inside the transaction already open, so one write
// that fails rolls back alone. What must happen only once the data is durable (watch events, replication
// pushes) is registered with afterCommit() and runs after the outermost COMMIT — or never, if the work
// is rolled back. enqueue() is group commit: writes that arrive together (in the same turn of the event
// loop) run in ONE transaction, each in its own savepoint, so they share one fsync; each caller's
// promise settles only after that COMMIT returned, so nothing is acknowledged before it is on disk.

import type { DatabaseSync } from 'node:sqlite';
import type { Log } from '../log/logger.ts';

export interface TransactionsComponents {
  db: DatabaseSync;
  log: Log;
}

export interface TransactionsInit {
  /** Called after any rollback (of a savepoint or the whole transaction): re-read what memory caches of
   *  the database (the revision counter), since the rolled-back work may have moved it. */
  onRollback: () => void;
}

interface Queued {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Figures of the group commits so far (bench and tests read them). */
export interface GroupCommitStats {
  /** Transactions committed by flush(). */
  batches: number;
  /** Writes those transactions carried. */
  writes: number;
  /** The most writes one transaction carried. */
  largest: number;
}

export class Transactions {
  readonly #db: DatabaseSync;
  readonly #log: Log;
  readonly #init: TransactionsInit;
  /** After-commit effects of each open level (index 0: the transaction, then each savepoint). */
  readonly #levels: (() => void)[][] = [];
  #queue: Queued[] = [];
  #scheduled = false;
  #closed = false;
  readonly stats: GroupCommitStats = { batches: 0, writes: 0, largest: 0 };

  constructor(components: TransactionsComponents, init: TransactionsInit) {
    this.#db = components.db;
    this.#log = components.log;
    this.#init = init;
  }

  /** Whether a transaction is open (work is running inside run()). */
  get open(): boolean {
    return this.#levels.length > 0;
  }

  /** Runs `work` atomically and returns its result; if it throws, its changes are rolled back (only
   *  its own, when it runs inside an open transaction) and the error is rethrown. */
  run<T>(work: () => T): T {
    const depth = this.#levels.length;
    this.#db.exec(depth === 0 ? 'BEGIN IMMEDIATE' : `SAVEPOINT s${depth}`);
    this.#levels.push([]);
    let result: T;
    try {
      result = work();
    } catch (err) {
      this.#levels.pop();
      this.#rollback(depth);
      throw err;
    }
    const effects = this.#levels.pop() ?? [];
    if (depth > 0) {
      this.#db.exec(`RELEASE s${depth}`);
      this.#levels[depth - 1].push(...effects);
      return result;
    }
    try {
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#rollback(0);
      throw err;
    }
    for (const effect of effects) this.#runEffect(effect);
    return result;
  }

  /** Runs `effect` once the open transaction commits (now, if none is open); drops it on rollback. */
  afterCommit(effect: () => void): void {
    const level = this.#levels.at(-1);
    if (level) level.push(effect);
    else this.#runEffect(effect);
  }

  /** Group commit: runs `work` (synchronous store calls) in the next batch — one transaction with the
   *  other writes queued in this turn of the event loop, `work` in its own savepoint — and resolves with
   *  its result once that transaction has committed, or rejects with its error (its changes alone rolled
   *  back). If the commit itself fails, every write of the batch rejects with that error. */
  enqueue<T>(work: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('the store is closed'));
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    this.#queue.push({ work, resolve: resolve as (v: unknown) => void, reject });
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
    return promise;
  }

  /** Commits what enqueue() has gathered, now (close() does it too). */
  flush(): void {
    this.#scheduled = false;
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.run(() => {
        for (const item of batch) {
          try {
            outcomes.push({ ok: true, value: this.run(item.work) });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    }
    this.stats.batches++;
    this.stats.writes += batch.length;
    this.stats.largest = Math.max(this.stats.largest, batch.length);
    batch.forEach((item, i) => {
      const o = outcomes[i];
      if (o.ok) item.resolve(o.value);
      else item.reject(o.error);
    });
  }

  /** Commits what is queued and refuses later writes (the store is closing). */
  close(): void {
    this.flush();
    this.#closed = true;
  }

  #rollback(depth: number): void {
    try {
      if (depth > 0) {
        this.#db.exec(`ROLLBACK TO s${depth}`);
        this.#db.exec(`RELEASE s${depth}`);
      } else if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
    } finally {
      this.#init.onRollback();
    }
  }

  #runEffect(effect: () => void): void {
    try {
      effect();
    } catch (err) {
      this.#log.error({ err }, 'an after-commit step threw; the write itself is committed');
    }
  }
}
