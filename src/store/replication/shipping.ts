// Which of this host's rows may leave it, and how they are packed: a tombstone past the retention is
// never shipped (nor taken back), a row over the object cap peers take is logged once and kept home, and
// rows go out in messages of about `batchBytes`. Shared by the push path and anti-entropy.

import { type Log, silentLogger } from '../../log/logger.ts';
import { hlcLowerBound } from '../hlc.ts';
import type { ReplicatedRow } from '../sqlite-store.ts';
import { keyText } from './digest.ts';

export interface ShippingComponents {
  log?: Log;
  now: () => number;
}

export interface ShippingInit {
  retentionMs: number;
  maxRowBytes: number;
  batchBytes: number;
}

export class Shipping {
  readonly retentionMs: number;
  readonly maxRowBytes: number;
  readonly batchBytes: number;
  private readonly log: Log;
  private readonly now: () => number;
  /** Keys of local rows too large to send, already logged. */
  private readonly oversized = new Set<string>();

  constructor(components: ShippingComponents, init: ShippingInit) {
    this.log = components.log ?? silentLogger.root;
    this.now = components.now;
    this.retentionMs = init.retentionMs;
    this.maxRowBytes = init.maxRowBytes;
    this.batchBytes = init.batchBytes;
  }

  /** A tombstone past the retention: purged (or about to be) everywhere, never shipped or taken. */
  expired(v: { deleted: boolean; hlc: string }): boolean {
    return v.deleted && v.hlc < hlcLowerBound(this.now() - this.retentionMs);
  }

  /** Whether `row` may be sent: not expired, and within the size peers take (one too large — kept from
   *  before the cap — is logged once and never sent, so no peer is asked to refuse it every sync). */
  sendable(row: ReplicatedRow): boolean {
    if (this.expired(row)) return false;
    const size = Buffer.byteLength(JSON.stringify(row.object));
    if (size <= this.maxRowBytes) return true;
    const k = keyText(row.kind, row.namespace, row.name);
    if (!this.oversized.has(k)) {
      this.oversized.add(k);
      this.log.warn(
        `not sending ${k}: its object is ${size} bytes, over the ${this.maxRowBytes}-byte cap peers take`,
      );
    }
    return false;
  }

  /** Splits rows into messages of about batchBytes (at least one row each). */
  chunks(rows: ReplicatedRow[]): ReplicatedRow[][] {
    const out: ReplicatedRow[][] = [];
    let cur: ReplicatedRow[] = [];
    let bytes = 0;
    for (const r of rows) {
      const size = JSON.stringify(r).length;
      if (cur.length > 0 && bytes + size > this.batchBytes) {
        out.push(cur);
        cur = [];
        bytes = 0;
      }
      cur.push(r);
      bytes += size;
    }
    if (cur.length > 0) out.push(cur);
    return out;
  }
}
