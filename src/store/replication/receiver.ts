// Taking rows from peers: every row is checked on its own — size, envelope, schema — and what fails is
// refused, counted by reason and logged at a limited rate, while the rest of its message still applies.
// The valid rows of every message that arrived since the last commit are merged in ONE store transaction
// (group commit: one fsync for pushes from several peers arriving together), where the store checks each
// row's clock, its writer's signature and whether that writer may write it; only then is each message
// answered. A received row is never passed on to other peers (each write is pushed by its own host).

import { type Log, silentLogger } from '../../log/logger.ts';
import { RefusalCounter } from '../../metrics/refusals.ts';
import { ROW_REFUSAL_REASONS, type RowRefusalReason, RowRefusedError, StoreError } from '../errors.ts';
import type { ApplyOutcome, ReplicatedRow } from '../sqlite-store.ts';
import { keyText } from './digest.ts';
import { MalformedMessageError } from './errors.ts';
import { checkRowEnvelope } from './messages.ts';
import type { ReplicaStore, ReplicatorStats, ValidateObject } from './replica-store.ts';
import type { Shipping } from './shipping.ts';

/** Metric name of the row refusal counter. */
export const ROWS_REFUSED_METRIC = 'xenos_replication_rows_refused_total';
/** What a row may carry beyond its object (names, versions, proofs): a row larger than its object cap by
 *  more than this is refused before it is parsed. */
const ROW_ENVELOPE_BYTES = 16 * 1024;

export interface Rejection {
  peer: string;
  key: string;
  reason: string;
}

export interface ReceiveCounts {
  applied: number;
  rejected: number;
}

export interface ReceiverComponents {
  store: ReplicaStore;
  shipping: Shipping;
  stats: ReplicatorStats;
  validate?: ValidateObject;
  log?: Log;
}

/** Rows of one received message waiting for the next group commit. */
interface InboxEntry {
  from: string;
  rows: ReplicatedRow[];
  counts: ReceiveCounts;
  resolve: (counts: ReceiveCounts) => void;
}

export class Receiver {
  /** The last 100 rows dropped as invalid, newest last. */
  readonly rejections: Rejection[] = [];
  /** Rows (or parts of rows) refused from peers, by reason. */
  readonly refusals: RefusalCounter<RowRefusalReason>;
  private readonly c: ReceiverComponents;
  private readonly log: Log;
  private inbox: InboxEntry[] = [];
  private inboxTimer: ReturnType<typeof setImmediate> | undefined;

  constructor(components: ReceiverComponents) {
    this.c = components;
    this.log = components.log ?? silentLogger.root;
    this.refusals = new RefusalCounter({
      name: ROWS_REFUSED_METRIC,
      help: 'Rows (or parts of rows) received from peers and refused, by reason.',
      reasons: ROW_REFUSAL_REASONS,
      log: this.log,
    });
  }

  /** No received rows waiting for their commit. */
  get idle(): boolean {
    return this.inbox.length === 0;
  }

  /** Checks rows from `from` on their own, then queues the valid ones for the next group commit;
   *  resolves once they are stored (the reply to the sender follows the commit). */
  receive(from: string, rows: unknown[]): Promise<ReceiveCounts> {
    const counts = { applied: 0, rejected: 0 };
    const valid: ReplicatedRow[] = [];
    this.c.stats.receivedRows += rows.length;
    for (const raw of rows) {
      let key = '?';
      try {
        const row = this.check(raw, (k) => {
          key = k;
        });
        if (row) valid.push(row);
        else this.c.stats.stale++;
      } catch (err) {
        this.reject(from, key, err, counts);
      }
    }
    if (valid.length === 0) return Promise.resolve(counts);
    return new Promise((resolve) => {
      this.inbox.push({ from, rows: valid, counts, resolve });
      this.inboxTimer ??= setImmediate(() => this.commit());
    });
  }

  /** Stores what was received and not yet committed (the replicator stops: before the store closes). */
  flush(): void {
    this.commit();
  }

  /** The row if it may be merged; undefined for an expired tombstone; throws for a refused one. */
  private check(raw: unknown, named: (key: string) => void): ReplicatedRow | undefined {
    const { maxRowBytes } = this.c.shipping;
    const size = Buffer.byteLength(JSON.stringify(raw) ?? '');
    if (size > maxRowBytes + ROW_ENVELOPE_BYTES) throw this.tooLarge(size);
    const row = checkRowEnvelope(raw);
    named(keyText(row.kind, row.namespace, row.name));
    if (size > maxRowBytes) {
      const objectSize = Buffer.byteLength(JSON.stringify(row.object));
      if (objectSize > maxRowBytes) throw this.tooLarge(objectSize);
    }
    if (this.c.shipping.expired(row)) return undefined;
    const errors = this.c.validate?.(row.object) ?? [];
    if (errors.length > 0) {
      throw new RowRefusedError(
        'schema',
        `invalid ${row.kind}: ${errors
          .slice(0, 3)
          .map((e) => `${e.path || '(object)'}: ${e.message}`)
          .join('; ')}`,
      );
    }
    return row;
  }

  /** Group commit: the rows of every message received since the last one are merged in ONE store
   *  transaction — one fsync — in arrival order. */
  private commit(): void {
    if (this.inboxTimer) clearImmediate(this.inboxTimer);
    this.inboxTimer = undefined;
    const entries = this.inbox;
    this.inbox = [];
    if (entries.length === 0) return;
    const rows = entries.flatMap((e) => e.rows);
    let outcomes: ApplyOutcome[];
    try {
      outcomes = this.c.store.applyReplicatedBatch(rows);
    } catch (err) {
      // The transaction itself failed (disk full, store closed): nothing of the batch is stored.
      outcomes = rows.map(() => ({ ok: false, error: err as Error }));
    }
    let i = 0;
    for (const { from, rows: mine, counts, resolve } of entries) {
      for (const row of mine) {
        const outcome = outcomes[i++];
        const key = keyText(row.kind, row.namespace, row.name);
        if (!outcome.ok) {
          this.reject(from, key, outcome.error, counts);
          continue;
        }
        // One part refused, the other taken: counted and logged, not a rejected row.
        if (outcome.refused) this.reject(from, key, outcome.refused);
        if (outcome.result.changed) {
          counts.applied++;
          this.c.stats.applied++;
        } else {
          this.c.stats.stale++;
        }
      }
      resolve(counts);
    }
  }

  /** Counts a refused row (`counts` given: all of it) by reason; the counter logs at a limited rate. */
  private reject(from: string, key: string, err: unknown, counts?: { rejected: number }): void {
    if (counts) {
      counts.rejected++;
      this.c.stats.rejected++;
    }
    const message = (err as Error).message;
    this.rejections.push({ peer: from, key, reason: message });
    if (this.rejections.length > 100) this.rejections.shift();
    const reason = refusalReason(err);
    if (reason) this.refusals.count(reason, `row ${key} from peer ${from}: ${message}`);
    else this.log.error({ err, peer: from }, `could not store row ${key} from peer ${from}`); // this host's fault (disk, database)
  }

  private tooLarge(bytes: number): RowRefusedError {
    return new RowRefusedError(
      'too_large',
      `the row's object is ${bytes} bytes, over the ${this.c.shipping.maxRowBytes}-byte object cap`,
    );
  }
}

/** The refusal counter's reason for a row refused because of what it is; undefined for a failure of this
 *  host's own (its database). */
function refusalReason(err: unknown): RowRefusalReason | undefined {
  if (err instanceof RowRefusedError) return err.reason;
  // The envelope is wrong, or the row does not describe itself (its key, its versions' writers).
  if (err instanceof MalformedMessageError || (err instanceof StoreError && err.code === 400))
    return 'malformed';
  return undefined;
}
