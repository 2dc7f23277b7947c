// The push path: each write made on this host goes, within `pushDelayMs`, once to every peer — and
// only from this host. A host that receives a row never passes it on, so a write costs N−1 rows in a
// cluster of N, whatever the shape of the connections (flooding through receivers cost 181 rows per
// write at 30 hosts where 29 were needed). A peer the push did not reach (down, partitioned, not
// reachable from here) is repaired by anti-entropy (anti-entropy.ts), which compares versions and ships
// only what differs.
//
// One push per peer is in flight at a time (the peer applies it in one transaction); what queues for a
// peer meanwhile goes out together in the next push, a later version of a row replacing the queued one,
// so a slow peer gets fewer, larger pushes and holds up no other. At most `maxConcurrent` pushes are in
// flight over all peers, so a write burst in a large cluster opens a bounded number of streams. A push
// that fails is tried once more after `retryDelayMs`; anti-entropy repairs what fails again.

import { type Log, silentLogger } from '../../log/logger.ts';
import type { ReplicatedRow } from '../sqlite-store.ts';
import type { ObjectKey } from '../store.ts';
import { keyText } from './digest.ts';
import { parsePushReply } from './messages.ts';
import type { ReplicaStore, ReplicatorStats } from './replica-store.ts';
import type { Shipping } from './shipping.ts';

export interface PusherComponents {
  store: ReplicaStore;
  shipping: Shipping;
  stats: ReplicatorStats;
  /** The peers to push to now. */
  peers: () => string[];
  /** One request to a peer (with the replicator's timeout and stop signal). */
  request: (peer: string, message: unknown) => Promise<unknown>;
  log?: Log;
}

export interface PusherInit {
  pushDelayMs: number;
  maxQueuedRows: number;
  maxConcurrent: number;
  /** A failed push is tried once more after this long. */
  retryDelayMs: number;
}

/** What waits for one peer while a push to it is in flight: sent together as the next push. */
interface Outbox {
  /** By key: a later version of a row replaces the one queued. */
  rows: Map<string, ReplicatedRow>;
  sending: Promise<void> | undefined;
}

export class Pusher {
  private readonly c: PusherComponents;
  private readonly init: PusherInit;
  private readonly log: Log;
  private running = false;
  private readonly pending = new Map<string, ObjectKey>();
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly outboxes = new Map<string, Outbox>();
  private inFlight = 0;
  /** Rows already pushed again after a failure (not retried twice). */
  private readonly retried = new WeakSet<ReplicatedRow>();
  private readonly retries = new Set<ReturnType<typeof setTimeout>>();
  private readonly slotWaiters: Array<() => void> = [];

  constructor(components: PusherComponents, init: PusherInit) {
    this.c = components;
    this.init = init;
    this.log = components.log ?? silentLogger.root;
  }

  /** Nothing waiting to be pushed or in flight. */
  get idle(): boolean {
    return this.pending.size === 0 && !this.flushTimer && this.outboxes.size === 0 && this.retries.size === 0;
  }

  start(): void {
    this.running = true;
  }

  /** Drops what has not been sent (anti-entropy carries it once this host is back). */
  stop(): void {
    this.running = false;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.pending.clear();
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
    for (const wake of this.slotWaiters.splice(0)) wake();
  }

  /** A write on this host: pushed to every peer with the next flush. */
  localWrite(key: ObjectKey): void {
    if (!this.running) return;
    this.c.stats.localWrites++;
    this.pending.set(keyText(key.kind, key.namespace, key.name), key);
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, this.init.pushDelayMs);
  }

  private flush(): void {
    const keys = [...this.pending.values()];
    this.pending.clear();
    const peers = this.c.peers();
    if (peers.length === 0) return;
    const rows: ReplicatedRow[] = [];
    for (const key of keys) {
      const row = this.c.store.replicationRow(key);
      if (row && this.c.shipping.sendable(row)) rows.push(row);
    }
    if (rows.length === 0) return;
    for (const peer of peers) this.queue(peer, rows);
  }

  /** Queues rows for `peer`; a retry never replaces a row queued since (it would be a later version). */
  private queue(peer: string, rows: ReplicatedRow[], retry = false): void {
    let box = this.outboxes.get(peer);
    if (!box) {
      box = { rows: new Map(), sending: undefined };
      this.outboxes.set(peer, box);
    }
    for (const row of rows) {
      const k = keyText(row.kind, row.namespace, row.name);
      if (box.rows.size >= this.init.maxQueuedRows && !box.rows.has(k)) {
        this.c.stats.failedPushes++; // the peer is slow or gone: anti-entropy repairs it
        continue;
      }
      if (retry) {
        if (box.rows.has(k)) continue;
        this.retried.add(row);
      }
      box.rows.set(k, row);
    }
    box.sending ??= this.drain(peer, box);
  }

  private async drain(peer: string, box: Outbox): Promise<void> {
    try {
      while (this.running && box.rows.size > 0) {
        await this.slot();
        try {
          if (!this.running) return;
          const rows = [...box.rows.values()];
          box.rows = new Map();
          for (const chunk of this.c.shipping.chunks(rows)) await this.send(peer, chunk);
        } finally {
          this.release();
        }
      }
    } finally {
      box.sending = undefined;
      if (this.outboxes.get(peer) === box) this.outboxes.delete(peer);
    }
  }

  private async send(peer: string, rows: ReplicatedRow[]): Promise<void> {
    try {
      parsePushReply(await this.c.request(peer, { type: 'push', rows }));
      this.c.stats.pushedRows += rows.length;
    } catch (err) {
      this.c.stats.failedPushes++;
      if (!this.running) return;
      // Once more, shortly, for rows not retried yet: a connection that dropped (libp2p closes one whose
      // keep-alive ping failed on a loaded host, failing every stream on it) is dialled again. What fails
      // twice waits for anti-entropy.
      const again = rows.filter((r) => !this.retried.has(r));
      if (again.length > 0) {
        const timer = setTimeout(() => {
          this.retries.delete(timer);
          if (this.running) this.queue(peer, again, true);
        }, this.init.retryDelayMs);
        this.retries.add(timer);
      }
      this.log.warn(
        { err, peer },
        `push of ${rows.length} row(s) to ${peer} failed (${again.length > 0 ? 'trying once more' : 'anti-entropy will repair'})`,
      );
    }
  }

  /** Waits for one of the `maxConcurrent` push slots. */
  private async slot(): Promise<void> {
    while (this.running && this.inFlight >= this.init.maxConcurrent) {
      await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    }
    this.inFlight++;
  }

  private release(): void {
    this.inFlight--;
    this.slotWaiters.shift()?.();
  }
}
