// Replicates the desired-state store between hosts with no master (Corrosion-style; see README.md):
// every local write is pushed to the connected peers within a few ms, each push naming the hosts
// already sent the row; a row that changes this host is forwarded to its peers not on that list (so
// hosts that are not directly connected still hear of it, and a full mesh forwards nothing);
// and periodic anti-entropy with a few random peers — plus at once with every peer that connects —
// compares bucket digests and ships what differs both ways, so a host that was away catches up.
// Every received row is size-capped, envelope-checked and validated against its kind's schema
// before the store merges it (last-writer-wins per part on (hlc, writer)), where its clock, its
// writer's signature and whether that writer may write it are checked (row-authority.ts); a bad row
// (or part) is dropped and counted by reason (`refusals`), with a rate-limited log line. Tombstones
// older than the retention are purged and never shipped or accepted again.

import { type Log, silentLogger } from '../../log/logger.ts';
import { RefusalCounter } from '../../metrics/refusals.ts';
import type { XObject } from '../../model/object.ts';
import { ROW_REFUSAL_REASONS, type RowRefusalReason, RowRefusedError, StoreError } from '../errors.ts';
import { hlcLowerBound } from '../hlc.ts';
import { MAX_OBJECT_BYTES } from '../limits.ts';
import type { WriterBindings } from '../row-authority.ts';
import type { ApplyOutcome, ReplicatedRow, RowVersion } from '../sqlite-store.ts';
import type { ObjectKey } from '../store.ts';
import { bucketOf, buildDigest, DEFAULT_BUCKETS, type Digest, keyText } from './digest.ts';
import { MalformedMessageError } from './errors.ts';
import {
  checkRowEnvelope,
  type ExchangeReply,
  parseDigestReply,
  parseExchangeReply,
  parsePushReply,
  parseRequest,
  parseWhoisReply,
  type WireKey,
  type WireVersion,
} from './messages.ts';
import type { SyncTransport } from './transport.ts';

/** What the replicator uses of the store (SqliteStore has it). */
export interface ReplicaStore {
  /** Merges rows in one transaction; one outcome per row, in order (see SqliteStore). */
  applyReplicatedBatch(rows: readonly ReplicatedRow[]): ApplyOutcome[];
  replicationRow(key: ObjectKey): ReplicatedRow | undefined;
  replicationVersions(): Iterable<RowVersion>;
  versionStamp(): number;
  onLocalWrite(listener: (key: ObjectKey) => void): () => void;
  purgeTombstones(olderThanMs: number, now?: number): number;
  /** Writer names bound to peer ids (answers `whois`). */
  readonly bindings: WriterBindings;
}

/** Checks an object from a peer against its kind's schema; empty when valid. The daemon passes one
 *  built from src/api/validation.ts (spec and status), so this module does not import the API. */
export type ValidateObject = (obj: XObject) => ReadonlyArray<{ path: string; message: string }>;

export interface ReplicatorComponents {
  store: ReplicaStore;
  transport: SyncTransport;
  validate?: ValidateObject;
  log?: Log;
  /** Wall clock in ms (tombstone age). Default Date.now. */
  now?: () => number;
}

export interface ReplicatorInit {
  /** Anti-entropy period. Default 5000 ms. */
  syncIntervalMs?: number;
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
}

export interface ReplicatorStats {
  /** Rows sent in pushes (local writes and forwards). */
  pushedRows: number;
  /** Received rows that changed this host. */
  applied: number;
  /** Received rows that were not newer than ours (or expired tombstones). */
  stale: number;
  /** Received rows dropped as invalid (or of which a part was); by reason in Replicator.refusals. */
  rejected: number;
  syncs: number;
  failedSyncs: number;
  failedPushes: number;
}

export interface Rejection {
  peer: string;
  key: string;
  reason: string;
}

/** Ids a push lists as already having its rows. */
const MAX_SEEN = 256;
/** What a row may carry beyond its object (names, versions, proofs): a row larger than its object cap by
 *  more than this is refused before it is parsed. */
const ROW_ENVELOPE_BYTES = 16 * 1024;
/** Metric name of the row refusal counter. */
export const ROWS_REFUSED_METRIC = 'xenos_replication_rows_refused_total';

export const DEFAULT_TOMBSTONE_RETENTION_MS = 24 * 60 * 60 * 1000;

/** What waits for one peer while a push to it is in flight: sent together as the next push. */
interface Outbox {
  /** By key: a later version of a row replaces the one queued. */
  rows: Map<string, ReplicatedRow>;
  /** Hosts known to have every queued row (the intersection of the pushes' lists). */
  seen: Set<string> | undefined;
  sending: Promise<void> | undefined;
}

/** Rows of one received message waiting for the next group commit. */
interface InboxEntry {
  from: string;
  seen: string[];
  rows: ReplicatedRow[];
  counts: { applied: number; rejected: number };
  resolve: (counts: { applied: number; rejected: number }) => void;
}

interface PendingPush {
  key: ObjectKey;
  /** Hosts known to have this version already (a forward); undefined for a local write. */
  reached?: Set<string>;
}

export class Replicator {
  readonly stats: ReplicatorStats = {
    pushedRows: 0,
    applied: 0,
    stale: 0,
    rejected: 0,
    syncs: 0,
    failedSyncs: 0,
    failedPushes: 0,
  };
  /** The last 100 rows dropped as invalid, newest last. */
  readonly rejections: Rejection[] = [];
  /** Rows (or parts of rows) refused from peers, by reason. */
  readonly refusals: RefusalCounter<RowRefusalReason>;

  private readonly store: ReplicaStore;
  private readonly transport: SyncTransport;
  private readonly validate: ValidateObject | undefined;
  private readonly log: Log;
  private readonly now: () => number;
  private readonly syncIntervalMs: number;
  private readonly syncPeers: number;
  private readonly pushDelayMs: number;
  private readonly buckets: number;
  private readonly retentionMs: number;
  private readonly gcIntervalMs: number;
  private readonly maxRowBytes: number;
  private readonly batchBytes: number;
  private readonly requestTimeoutMs: number;
  private readonly maxSyncRounds: number;
  private readonly maxQueuedRows: number;

  private running = false;
  private stopController = new AbortController();
  private readonly cleanups: Array<() => void> = [];
  private readonly pending = new Map<string, PendingPush>();
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly syncs = new Map<string, Promise<void>>();
  private readonly outboxes = new Map<string, Outbox>();
  private inbox: InboxEntry[] = [];
  private inboxTimer: ReturnType<typeof setImmediate> | undefined;
  private digestCache: { stamp: number; digest: Digest } | undefined;
  /** Keys of local rows too large to send, already logged. */
  private readonly oversized = new Set<string>();

  constructor(components: ReplicatorComponents, init: ReplicatorInit = {}) {
    this.store = components.store;
    this.transport = components.transport;
    this.validate = components.validate;
    this.log = components.log ?? silentLogger.root;
    this.now = components.now ?? Date.now;
    this.syncIntervalMs = init.syncIntervalMs ?? 5000;
    this.syncPeers = init.syncPeers ?? 3;
    this.pushDelayMs = init.pushDelayMs ?? 5;
    this.buckets = init.buckets ?? DEFAULT_BUCKETS;
    this.retentionMs = init.tombstoneRetentionMs ?? DEFAULT_TOMBSTONE_RETENTION_MS;
    this.gcIntervalMs = init.gcIntervalMs ?? 10 * 60 * 1000;
    this.maxRowBytes = init.maxRowBytes ?? MAX_OBJECT_BYTES;
    this.batchBytes = init.batchBytes ?? 1024 * 1024;
    this.requestTimeoutMs = init.requestTimeoutMs ?? 10_000;
    this.maxSyncRounds = init.maxSyncRounds ?? 8;
    this.maxQueuedRows = init.maxQueuedRows ?? 4096;
    this.refusals = new RefusalCounter({
      name: ROWS_REFUSED_METRIC,
      help: 'Rows (or parts of rows) received from peers and refused, by reason.',
      reasons: ROW_REFUSAL_REASONS,
      log: this.log,
    });
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.stopController = new AbortController();
    this.transport.onRequest((from, message, opts) => this.serve(from, message, opts.signal));
    this.cleanups.push(this.store.onLocalWrite((key) => this.enqueue({ key })));
    this.cleanups.push(
      this.transport.onPeerUp((peer) => {
        this.syncWith(peer).catch((err) => this.log.warn({ err, peer }, `sync with new peer ${peer} failed`));
      }),
    );
    await this.transport.start();
    const sync = setInterval(() => this.syncRound(), this.syncIntervalMs);
    const gc = setInterval(() => this.collectGarbage(), this.gcIntervalMs);
    this.cleanups.push(
      () => clearInterval(sync),
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
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.pending.clear();
    // Rows already received and acknowledged-to-be: store them before the store may close.
    this.applyInbox();
    await Promise.allSettled([...this.syncs.values(), ...[...this.outboxes.values()].map((o) => o.sending)]);
    await this.transport.stop();
  }

  /** Nothing queued or in flight: no push waiting or being sent, no sync running. */
  get idle(): boolean {
    return (
      this.pending.size === 0 &&
      !this.flushTimer &&
      this.outboxes.size === 0 &&
      this.inbox.length === 0 &&
      this.syncs.size === 0
    );
  }

  /** One anti-entropy exchange with `peer` (shared with one already running). */
  syncWith(peer: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const running = this.syncs.get(peer);
    if (running) return running;
    const p = this.runSync(peer, opts.signal)
      .then(
        () => {
          this.stats.syncs++;
        },
        (err) => {
          this.stats.failedSyncs++;
          throw err;
        },
      )
      .finally(() => this.syncs.delete(peer));
    this.syncs.set(peer, p);
    return p;
  }

  /** Removes tombstones older than the retention now; returns how many. */
  collectGarbage(): number {
    try {
      return this.store.purgeTombstones(this.retentionMs, this.now());
    } catch (err) {
      this.log.error({ err }, 'purging old tombstones failed');
      return 0;
    }
  }

  // ---- push --------------------------------------------------------------------------------

  private enqueue(p: PendingPush): void {
    if (!this.running) return;
    const k = keyText(p.key.kind, p.key.namespace, p.key.name);
    // A local write outranks a forward: it goes to everyone.
    const before = this.pending.get(k);
    if (!before || p.reached === undefined) this.pending.set(k, p);
    else if (before.reached) {
      // Heard of twice before the flush: only hosts on both lists surely have it.
      for (const id of before.reached) if (!p.reached.has(id)) before.reached.delete(id);
    }
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, this.pushDelayMs);
  }

  private flush(): void {
    const batch = [...this.pending.values()];
    this.pending.clear();
    const peers = this.transport.peers();
    if (peers.length === 0) return;
    const perPeer = new Map<string, { rows: ReplicatedRow[]; seen?: Set<string> }>();
    for (const p of peers) perPeer.set(p, { rows: [] });
    for (const { key, reached } of batch) {
      const row = this.store.replicationRow(key);
      if (!row || !this.shippable(row)) continue;
      const targets = reached ? peers.filter((p) => !reached.has(p)) : peers;
      if (targets.length === 0) continue;
      // Who has it once this flush is done: the push tells receivers not to forward to them.
      const after = new Set([...(reached ?? []), ...targets, this.transport.self]);
      for (const t of targets) {
        const out = perPeer.get(t)!;
        out.rows.push(row);
        out.seen = out.seen ? new Set([...out.seen].filter((id) => after.has(id))) : after;
      }
    }
    for (const [peer, { rows, seen }] of perPeer)
      if (rows.length > 0) this.push(peer, rows, seen ?? new Set());
  }

  /** Queues rows for `peer`. One push per peer is in flight at a time (the peer applies it in one
   *  transaction); whatever queues meanwhile goes out together in the next, so a slow peer gets
   *  fewer, larger pushes instead of a growing backlog of small ones — and holds up no other peer. */
  private push(peer: string, rows: ReplicatedRow[], seen: Set<string>): void {
    let box = this.outboxes.get(peer);
    if (!box) {
      box = { rows: new Map(), seen: undefined, sending: undefined };
      this.outboxes.set(peer, box);
    }
    for (const row of rows) {
      const k = keyText(row.kind, row.namespace, row.name);
      if (box.rows.size >= this.maxQueuedRows && !box.rows.has(k)) {
        this.stats.failedPushes++; // the peer is slow or gone: anti-entropy repairs it
        continue;
      }
      box.rows.set(k, row);
    }
    box.seen = box.seen ? new Set([...box.seen].filter((id) => seen.has(id))) : new Set(seen);
    box.sending ??= this.drainOutbox(peer, box);
  }

  private async drainOutbox(peer: string, box: Outbox): Promise<void> {
    try {
      while (this.running && box.rows.size > 0) {
        const rows = [...box.rows.values()];
        const seen = [...(box.seen ?? [])].slice(0, MAX_SEEN);
        box.rows = new Map();
        box.seen = undefined;
        for (const chunk of this.chunks(rows)) {
          try {
            parsePushReply(await this.request(peer, { type: 'push', rows: chunk, seen }));
            this.stats.pushedRows += chunk.length;
          } catch (err) {
            this.stats.failedPushes++;
            if (this.running)
              this.log.warn(
                { err, peer },
                `push of ${chunk.length} row(s) to ${peer} failed (anti-entropy will retry)`,
              );
          }
        }
      }
    } finally {
      box.sending = undefined;
      if (this.outboxes.get(peer) === box) this.outboxes.delete(peer);
    }
  }

  // ---- anti-entropy ------------------------------------------------------------------------

  private syncRound(): void {
    for (const peer of sample(this.transport.peers(), this.syncPeers)) {
      this.syncWith(peer).catch((err) => {
        if (this.running) this.log.warn({ err, peer }, `anti-entropy with ${peer} failed`);
      });
    }
  }

  private async runSync(peer: string, signal?: AbortSignal): Promise<void> {
    for (let round = 0; round < this.maxSyncRounds && this.running; round++) {
      const mine = this.digest();
      const reply = parseDigestReply(
        await this.request(peer, { type: 'digest', buckets: mine.hashes }, signal),
        this.buckets,
      );
      if (reply.buckets.length === 0) return;
      const described = new Set(reply.buckets);
      const theirs = new Map<string, WireVersion>();
      for (const v of reply.versions) {
        const k = keyText(v[0], v[1], v[2]);
        if (described.has(bucketOf(k, this.buckets))) theirs.set(k, v);
      }
      const send: ObjectKey[] = [];
      const want: WireKey[] = [];
      for (const b of described) {
        for (const v of mine.versions[b]) {
          const k = keyText(v.kind, v.namespace, v.name);
          const t = theirs.get(k);
          theirs.delete(k);
          if (!t || v.hlc > t[3] || v.statusHlc > t[4]) send.push(v);
          if (t && (t[3] > v.hlc || t[4] > v.statusHlc)) want.push([v.kind, v.namespace, v.name]);
        }
      }
      for (const t of theirs.values()) want.push([t[0], t[1], t[2]]);
      await this.exchange(peer, send, want, signal);
      if (!reply.more) return;
    }
  }

  /** Sends our newer rows and fetches theirs, in messages of about batchBytes. */
  private async exchange(
    peer: string,
    send: ObjectKey[],
    want: WireKey[],
    signal?: AbortSignal,
  ): Promise<void> {
    const rows = send
      .map((k) => this.store.replicationRow(k))
      .filter((r): r is ReplicatedRow => !!r && !this.expired(r) && this.shippable(r));
    const outgoing = this.chunks(rows);
    let wantLeft = want;
    for (let i = 0; i < outgoing.length || wantLeft.length > 0; i++) {
      const batch = outgoing[i] ?? [];
      const asked = wantLeft.slice(0, 1000);
      const reply: ExchangeReply = parseExchangeReply(
        await this.request(peer, { type: 'exchange', rows: batch, want: asked }, signal),
        asked.length,
      );
      await this.receive(peer, reply.rows);
      // A reply that answers none of a non-empty want list would loop forever: stop until next time.
      if (asked.length > 0 && reply.answered === 0 && i >= outgoing.length) return;
      wantLeft = wantLeft.slice(reply.answered);
    }
  }

  // ---- serving -----------------------------------------------------------------------------

  private async serve(from: string, message: unknown, _signal: AbortSignal): Promise<unknown> {
    const req = parseRequest(message);
    switch (req.type) {
      case 'whois':
        return { bindings: req.names.map((n) => [n, this.store.bindings.peerOf(n) ?? null]) };
      case 'push':
        return this.receive(from, req.rows, req.seen);
      case 'digest':
        return this.describeDifferences(req.buckets);
      case 'exchange': {
        const counts = await this.receive(from, req.rows);
        const rows: ReplicatedRow[] = [];
        let bytes = 0;
        let answered = 0;
        for (const [kind, namespace, name] of req.want) {
          const row = this.store.replicationRow({ kind, namespace, name });
          const size = row ? JSON.stringify(row).length : 0;
          if (rows.length > 0 && bytes + size > this.batchBytes) break;
          if (row && !this.expired(row) && this.shippable(row)) {
            rows.push(row);
            bytes += size;
          }
          answered++;
        }
        return { rows, answered, ...counts };
      }
    }
  }

  private describeDifferences(theirs: string[]): unknown {
    if (theirs.length !== this.buckets) {
      throw new MalformedMessageError(
        `digest has ${theirs.length} buckets, this host uses ${this.buckets}; give every host the same "buckets" setting`,
      );
    }
    const mine = this.digest();
    const buckets: number[] = [];
    const versions: WireVersion[] = [];
    let bytes = 0;
    let more = false;
    for (let b = 0; b < this.buckets; b++) {
      if (mine.hashes[b] === theirs[b]) continue;
      const list = mine.versions[b];
      const size = list.reduce(
        (n, v) => n + v.kind.length + v.namespace.length + v.name.length + 2 * v.hlc.length + 16,
        0,
      );
      if (buckets.length > 0 && bytes + size > this.batchBytes) {
        more = true;
        break;
      }
      buckets.push(b);
      bytes += size;
      for (const v of list) versions.push([v.kind, v.namespace, v.name, v.hlc, v.statusHlc]);
    }
    return { buckets, versions, more };
  }

  // ---- receiving ---------------------------------------------------------------------------

  /** Checks rows from `from` on their own, then queues the valid ones for the next group commit;
   *  resolves once they are stored (the reply to the sender follows the commit). Each row that
   *  changed this host is forwarded to the peers not known to have it (`seen`: the hosts the sender
   *  says have it). */
  private receive(
    from: string,
    rows: unknown[],
    seen: string[] = [],
  ): Promise<{ applied: number; rejected: number }> {
    const counts = { applied: 0, rejected: 0 };
    const valid: ReplicatedRow[] = [];
    for (const raw of rows) {
      let key = '?';
      try {
        const size = Buffer.byteLength(JSON.stringify(raw) ?? '');
        if (size > this.maxRowBytes + ROW_ENVELOPE_BYTES) throw this.tooLarge(size);
        const row = checkRowEnvelope(raw);
        key = keyText(row.kind, row.namespace, row.name);
        if (size > this.maxRowBytes) {
          const objectSize = Buffer.byteLength(JSON.stringify(row.object));
          if (objectSize > this.maxRowBytes) throw this.tooLarge(objectSize);
        }
        if (this.expired(row)) {
          this.stats.stale++;
          continue;
        }
        const errors = this.validate?.(row.object) ?? [];
        if (errors.length > 0) {
          throw new RowRefusedError(
            'schema',
            `invalid ${row.kind}: ${errors
              .slice(0, 3)
              .map((e) => `${e.path || '(object)'}: ${e.message}`)
              .join('; ')}`,
          );
        }
        valid.push(row);
      } catch (err) {
        this.reject(from, key, err, counts);
      }
    }
    if (valid.length === 0) return Promise.resolve(counts);
    return new Promise((resolve) => {
      this.inbox.push({ from, seen, rows: valid, counts, resolve });
      this.inboxTimer ??= setImmediate(() => this.applyInbox());
    });
  }

  /** Group commit: the rows of every message received since the last one (pushes from several
   *  peers arriving together) are merged in ONE store transaction — one fsync — in arrival order. */
  private applyInbox(): void {
    if (this.inboxTimer) clearImmediate(this.inboxTimer);
    this.inboxTimer = undefined;
    const entries = this.inbox;
    this.inbox = [];
    if (entries.length === 0) return;
    const rows = entries.flatMap((e) => e.rows);
    let outcomes: ApplyOutcome[];
    try {
      outcomes = this.store.applyReplicatedBatch(rows);
    } catch (err) {
      // The transaction itself failed (disk full, store closed): nothing of the batch is stored.
      outcomes = rows.map(() => ({ ok: false, error: err as Error }));
    }
    let i = 0;
    for (const { from, seen, rows: mine, counts, resolve } of entries) {
      for (const row of mine) {
        const outcome = outcomes[i++];
        const key = { kind: row.kind, namespace: row.namespace, name: row.name };
        if (!outcome.ok) {
          this.reject(from, keyText(key.kind, key.namespace, key.name), outcome.error, counts);
          continue;
        }
        // One part refused, the other taken: counted and logged, not a rejected row.
        if (outcome.refused) this.reject(from, keyText(key.kind, key.namespace, key.name), outcome.refused);
        if (outcome.result.changed) {
          counts.applied++;
          this.stats.applied++;
          const reached = new Set(seen);
          reached.add(from);
          this.enqueue({ key, reached });
        } else {
          this.stats.stale++;
        }
      }
      resolve(counts);
    }
  }

  /** Counts a refused row (`counts` given: all of it) by reason; the counter logs at a limited rate. */
  private reject(from: string, key: string, err: unknown, counts?: { rejected: number }): void {
    if (counts) {
      counts.rejected++;
      this.stats.rejected++;
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
      `the row's object is ${bytes} bytes, over the ${this.maxRowBytes}-byte object cap`,
    );
  }

  /** A row peers will take by size; one too large (kept from before the cap) is logged once and never sent. */
  private shippable(row: ReplicatedRow): boolean {
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

  /** The peer id `peer` says the writer name `name` is bound to (undefined: none), for a join-time check that
   *  this host's name is not another host's. */
  async whois(peer: string, name: string, opts: { signal?: AbortSignal } = {}): Promise<string | undefined> {
    const reply = parseWhoisReply(await this.request(peer, { type: 'whois', names: [name] }, opts.signal));
    return reply.get(name);
  }

  // ---- helpers -----------------------------------------------------------------------------

  private digest(): Digest {
    const stamp = this.store.versionStamp();
    if (this.digestCache?.stamp !== stamp) {
      const digest = buildDigest(this.store.replicationVersions(), this.buckets, (v) => this.expired(v));
      this.digestCache = { stamp, digest };
    }
    return this.digestCache.digest;
  }

  /** A tombstone past the retention: purged (or about to be) everywhere, never shipped or taken. */
  private expired(v: { deleted: boolean; hlc: string }): boolean {
    return v.deleted && v.hlc < hlcLowerBound(this.now() - this.retentionMs);
  }

  private request(peer: string, message: unknown, signal?: AbortSignal): Promise<unknown> {
    const parts = [this.stopController.signal, AbortSignal.timeout(this.requestTimeoutMs)];
    if (signal) parts.push(signal);
    return this.transport.request(peer, message, { signal: AbortSignal.any(parts) });
  }

  /** Splits rows into messages of about batchBytes (at least one row each). */
  private chunks(rows: ReplicatedRow[]): ReplicatedRow[][] {
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

/** The refusal counter's reason for a row refused because of what it is; undefined for a failure of this
 *  host's own (its database). */
function refusalReason(err: unknown): RowRefusalReason | undefined {
  if (err instanceof RowRefusedError) return err.reason;
  // The envelope is wrong, or the row does not describe itself (its key, its versions' writers).
  if (err instanceof MalformedMessageError || (err instanceof StoreError && err.code === 400))
    return 'malformed';
  return undefined;
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
