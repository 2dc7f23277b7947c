// Replicates the desired-state store between hosts with no master (Corrosion-style; see README.md), from
// three parts: the push path (pusher.ts: each local write goes once to every peer, from the host that
// made it, never passed on by receivers), anti-entropy (anti-entropy.ts: periodic digest comparison with a
// few random peers, and at once with every peer that connects, shipping only what differs — how a host
// that missed a push catches up), and the receiving side (receiver.ts: every row checked on its own, then
// merged by the store, last-writer-wins per part on (hlc, writer), in one transaction per group of
// messages). This file wires them to the store and the transport, serves peers' requests, and purges
// tombstones older than the retention, which are never shipped or accepted again.

import { type Log, silentLogger } from '../../log/logger.ts';
import type { RefusalCounter } from '../../metrics/refusals.ts';
import type { RowRefusalReason } from '../errors.ts';
import { MAX_OBJECT_BYTES } from '../limits.ts';
import { AntiEntropy } from './anti-entropy.ts';
import { DEFAULT_BUCKETS } from './digest.ts';
import { parseRequest, parseWhoisReply } from './messages.ts';
import { Pusher } from './pusher.ts';
import { Receiver, type Rejection } from './receiver.ts';
import { emptyStats, type ReplicaStore, type ReplicatorStats, type ValidateObject } from './replica-store.ts';
import { Shipping } from './shipping.ts';
import { SyncPace } from './sync-pace.ts';
import type { SyncTransport } from './transport.ts';

export type { ReplicaStore, ReplicatorStats, ValidateObject } from './replica-store.ts';

export interface ReplicatorComponents {
  store: ReplicaStore;
  transport: SyncTransport;
  validate?: ValidateObject;
  log?: Log;
  /** Wall clock in ms (tombstone age). Default Date.now. */
  now?: () => number;
}

export interface ReplicatorInit {
  /** Anti-entropy period while anything changes. Default 5000 ms. */
  syncIntervalMs?: number;
  /** The longest anti-entropy period, reached by doubling while rounds find nothing to repair
   *  (sync-pace.ts). Default 12 × syncIntervalMs (60 s). */
  maxSyncIntervalMs?: number;
  /** Peers synced with each period (random ones). Default 3. */
  syncPeers?: number;
  /** Local writes are pushed in batches collected over this long. Default 5 ms. */
  pushDelayMs?: number;
  /** Digest buckets; must be the same on every host. Default 128. */
  buckets?: number;
  /** Tombstones are kept (and deletions healed across partitions) this long. Default 24 h. */
  tombstoneRetentionMs?: number;
  /** How often old tombstones are purged. Default 10 min. */
  gcIntervalMs?: number;
  /** A row whose object's JSON is larger is neither taken from a peer nor sent to one. Default
   *  MAX_OBJECT_BYTES (src/store/limits.ts), the size the API takes. */
  maxRowBytes?: number;
  /** Rows and versions per message are cut at about this many bytes (keep under the transport's
   *  message cap). Default 1 MiB. */
  batchBytes?: number;
  /** Timeout of one request to a peer. Default 10 s. */
  requestTimeoutMs?: number;
  /** Digest rounds in one sync before it gives up until the next period. Default 8. */
  maxSyncRounds?: number;
  /** Rows waiting for one peer (while a push to it is in flight) before newer ones are dropped
   *  (anti-entropy then repairs). Default 4096. */
  maxQueuedRows?: number;
  /** Pushes in flight at once over all peers. Default 32. */
  maxConcurrentPushes?: number;
  /** A failed push is tried once more after this long. Default 250 ms. */
  pushRetryDelayMs?: number;
}

export const DEFAULT_TOMBSTONE_RETENTION_MS = 24 * 60 * 60 * 1000;

export class Replicator {
  readonly stats: ReplicatorStats = emptyStats();

  private readonly store: ReplicaStore;
  private readonly transport: SyncTransport;
  private readonly log: Log;
  private readonly now: () => number;
  private readonly pace: SyncPace;
  private readonly syncPeers: number;
  private readonly gcIntervalMs: number;
  private readonly requestTimeoutMs: number;
  private readonly shipping: Shipping;
  private readonly pusher: Pusher;
  private readonly receiver: Receiver;
  private readonly antiEntropy: AntiEntropy;

  private running = false;
  private syncing = false;
  private syncTimer: NodeJS.Timeout | undefined;
  /** The store's version and the counters `roundEnded` reads, as the last anti-entropy round ended. */
  private lastRound = { stamp: -1, counts: [] as number[] };
  /** Resolved by the first anti-entropy exchange that completes with any peer. */
  private readonly firstSync = Promise.withResolvers<void>();
  private stopController = new AbortController();
  private readonly cleanups: Array<() => void> = [];

  constructor(components: ReplicatorComponents, init: ReplicatorInit = {}) {
    this.store = components.store;
    this.transport = components.transport;
    this.log = components.log ?? silentLogger.root;
    this.now = components.now ?? Date.now;
    const syncIntervalMs = init.syncIntervalMs ?? 5000;
    this.pace = new SyncPace(syncIntervalMs, init.maxSyncIntervalMs ?? 12 * syncIntervalMs);
    this.syncPeers = init.syncPeers ?? 3;
    this.gcIntervalMs = init.gcIntervalMs ?? 10 * 60 * 1000;
    this.requestTimeoutMs = init.requestTimeoutMs ?? 10_000;
    this.shipping = new Shipping(
      { log: this.log, now: this.now },
      {
        retentionMs: init.tombstoneRetentionMs ?? DEFAULT_TOMBSTONE_RETENTION_MS,
        maxRowBytes: init.maxRowBytes ?? MAX_OBJECT_BYTES,
        batchBytes: init.batchBytes ?? 1024 * 1024,
      },
    );
    const parts = { store: this.store, shipping: this.shipping, stats: this.stats };
    this.receiver = new Receiver({ ...parts, validate: components.validate, log: this.log });
    this.pusher = new Pusher(
      {
        ...parts,
        peers: () => this.transport.peers(),
        request: (peer, message) => this.request(peer, message),
        log: this.log,
      },
      {
        pushDelayMs: init.pushDelayMs ?? 5,
        maxQueuedRows: init.maxQueuedRows ?? 4096,
        maxConcurrent: init.maxConcurrentPushes ?? 32,
        retryDelayMs: init.pushRetryDelayMs ?? 250,
      },
    );
    this.antiEntropy = new AntiEntropy(
      {
        ...parts,
        request: (peer, message, signal) => this.request(peer, message, signal),
        receive: (from, rows) => this.receiver.receive(from, rows),
        running: () => this.running,
      },
      { buckets: init.buckets ?? DEFAULT_BUCKETS, maxSyncRounds: init.maxSyncRounds ?? 8 },
    );
  }

  /** The last 100 rows dropped as invalid, newest last. */
  get rejections(): readonly Rejection[] {
    return this.receiver.rejections;
  }

  /** Rows (or parts of rows) refused from peers, by reason. */
  get refusals(): RefusalCounter<RowRefusalReason> {
    return this.receiver.refusals;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.stopController = new AbortController();
    this.pusher.start();
    this.transport.onRequest((from, message) => this.serve(from, message));
    this.cleanups.push(
      this.store.onLocalWrite((key) => {
        this.pusher.localWrite(key);
        if (this.pace.wake()) this.scheduleSync();
      }),
    );
    this.cleanups.push(
      this.transport.onPeerUp((peer) => {
        this.syncWith(peer).catch((err) => this.log.warn({ err, peer }, `sync with new peer ${peer} failed`));
      }),
    );
    await this.transport.start();
    this.scheduleSync();
    const gc = setInterval(() => this.collectGarbage(), this.gcIntervalMs);
    this.cleanups.push(
      () => clearTimeout(this.syncTimer),
      () => clearInterval(gc),
    );
    this.collectGarbage();
    for (const peer of this.transport.peers()) {
      this.syncWith(peer).catch((err) => this.log.warn({ err, peer }, `initial sync with ${peer} failed`));
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopController.abort(new Error('replication stopping'));
    for (const c of this.cleanups.splice(0)) c();
    this.pusher.stop();
    // Rows already received and acknowledged-to-be: store them before the store may close.
    this.receiver.flush();
    await this.transport.stop();
  }

  /** Nothing queued, in flight or being merged (tests wait for this before counting). */
  get idle(): boolean {
    return this.pusher.idle && this.receiver.idle && this.antiEntropy.idle;
  }

  /** One anti-entropy exchange with `peer` (shared with one already running). */
  syncWith(peer: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    return this.antiEntropy.syncWith(peer, opts.signal).then(() => this.firstSync.resolve());
  }

  /** Resolves once this host has completed one anti-entropy exchange with a peer: it then holds every row
   *  that peer held (what the cluster wrote while this host was away, as far as that peer knows). */
  caughtUp(): Promise<void> {
    return this.firstSync.promise;
  }

  /** Removes tombstones older than the retention now; returns how many. */
  collectGarbage(): number {
    try {
      return this.store.purgeTombstones(this.shipping.retentionMs, this.now());
    } catch (err) {
      this.log.error({ err }, 'purging old tombstones failed');
      return 0;
    }
  }

  /** The peer id `peer` says the writer name `name` is bound to (undefined: none), for a join-time check that
   *  this host's name is not another host's. */
  async whois(peer: string, name: string, opts: { signal?: AbortSignal } = {}): Promise<string | undefined> {
    const reply = parseWhoisReply(await this.request(peer, { type: 'whois', names: [name] }, opts.signal));
    return reply.get(name);
  }

  /** The next anti-entropy round, `pace.wait` from now (replacing one already planned). */
  private scheduleSync(): void {
    clearTimeout(this.syncTimer);
    this.syncTimer = setTimeout(() => {
      this.syncRound().finally(() => {
        if (this.running) this.scheduleSync();
      });
    }, this.pace.wait);
  }

  /** Syncs with `syncPeers` random peers, one after the other: what the first brings is in the digest
   *  the next one sees, so two peers do not both send this host the same missing row. Then sets the pace:
   *  a round that repaired nothing, with nothing written, received or failed since the last, slows the next. */
  private async syncRound(): Promise<void> {
    if (this.syncing) return; // the last round has not finished (slow peers): skip this one
    this.syncing = true;
    try {
      for (const peer of sample(this.transport.peers(), this.syncPeers)) {
        if (!this.running) return;
        await this.syncWith(peer).catch((err) => {
          if (this.running) this.log.warn({ err, peer }, `anti-entropy with ${peer} failed`);
        });
      }
    } finally {
      this.syncing = false;
    }
    // Quiet: since the last round ended, nothing written or received here, no row sent, nothing failed.
    const s = this.stats;
    const now = {
      stamp: this.store.versionStamp(),
      counts: [s.syncedRows, s.failedSyncs, s.failedPushes, s.receivedRows],
    };
    const last = this.lastRound;
    this.pace.roundEnded(now.stamp === last.stamp && now.counts.every((n, i) => n === last.counts[i]));
    this.lastRound = now;
  }

  private async serve(from: string, message: unknown): Promise<unknown> {
    const req = parseRequest(message);
    switch (req.type) {
      case 'whois':
        return { bindings: req.names.map((n) => [n, this.store.bindings.peerOf(n) ?? null]) };
      case 'push':
        return this.receiver.receive(from, req.rows);
      case 'digest':
        return this.antiEntropy.describeDifferences(req.buckets);
      case 'exchange':
        return this.antiEntropy.answerExchange(from, req.rows, req.want);
    }
  }

  private request(peer: string, message: unknown, signal?: AbortSignal): Promise<unknown> {
    const parts = [this.stopController.signal, AbortSignal.timeout(this.requestTimeoutMs)];
    if (signal) parts.push(signal);
    return this.transport.request(peer, message, { signal: AbortSignal.any(parts) });
  }
}

/** Up to n distinct random elements of xs. */
function sample<T>(xs: T[], n: number): T[] {
  if (xs.length <= n) return xs;
  const copy = [...xs];
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(Math.random() * (copy.length - i));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy.slice(0, n);
}
