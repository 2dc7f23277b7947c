// Anti-entropy: how a host that missed rows (down, partitioned, not reached by a push) catches up,
// without any flooding. Every `syncIntervalMs` a host syncs with `syncPeers` random peers, and at once
// with every peer that connects: it sends its bucket digest (digest.ts: 128 hashes), the peer answers
// with its versions in the buckets that differ, and the initiator sends the rows it has newer and asks for
// those the peer has newer, in messages of about `batchBytes`. Two hosts that agree exchange one ~3 KB
// round trip, however many objects they hold; only rows that really differ ever travel.

import type { ReplicatedRow } from '../sqlite-store.ts';
import type { ObjectKey } from '../store.ts';
import { bucketOf, buildDigest, type Digest, keyText } from './digest.ts';
import { MalformedMessageError } from './errors.ts';
import {
  type ExchangeReply,
  parseDigestReply,
  parseExchangeReply,
  type WireKey,
  type WireVersion,
} from './messages.ts';
import type { ReceiveCounts } from './receiver.ts';
import type { ReplicaStore, ReplicatorStats } from './replica-store.ts';
import type { Shipping } from './shipping.ts';

export interface AntiEntropyComponents {
  store: ReplicaStore;
  shipping: Shipping;
  stats: ReplicatorStats;
  /** One request to a peer (with the replicator's timeout and stop signal, and the caller's). */
  request: (peer: string, message: unknown, signal?: AbortSignal) => Promise<unknown>;
  /** Takes rows a peer sent (checks and stores them). */
  receive: (from: string, rows: unknown[]) => Promise<ReceiveCounts>;
  /** Whether the replicator still runs. */
  running: () => boolean;
}

export interface AntiEntropyInit {
  buckets: number;
  maxSyncRounds: number;
}

export class AntiEntropy {
  private readonly c: AntiEntropyComponents;
  private readonly buckets: number;
  private readonly maxRounds: number;
  private readonly syncs = new Map<string, Promise<void>>();
  private digestCache: { stamp: number; digest: Digest } | undefined;

  constructor(components: AntiEntropyComponents, init: AntiEntropyInit) {
    this.c = components;
    this.buckets = init.buckets;
    this.maxRounds = init.maxSyncRounds;
  }

  /** No sync running. */
  get idle(): boolean {
    return this.syncs.size === 0;
  }

  /** One anti-entropy exchange with `peer` (shared with one already running). */
  syncWith(peer: string, signal?: AbortSignal): Promise<void> {
    const running = this.syncs.get(peer);
    if (running) return running;
    const p = this.run(peer, signal)
      .then(
        () => {
          this.c.stats.syncs++;
        },
        (err) => {
          this.c.stats.failedSyncs++;
          throw err;
        },
      )
      .finally(() => this.syncs.delete(peer));
    this.syncs.set(peer, p);
    return p;
  }

  /** Answers a peer's digest: this host's versions in the buckets that differ (as many as fit). */
  describeDifferences(theirs: string[]): unknown {
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
      if (buckets.length > 0 && bytes + size > this.c.shipping.batchBytes) {
        more = true;
        break;
      }
      buckets.push(b);
      bytes += size;
      for (const v of list) versions.push([v.kind, v.namespace, v.name, v.hlc, v.statusHlc]);
    }
    return { buckets, versions, more };
  }

  /** Answers a peer's exchange: takes its rows, sends the wanted ones (as many as fit). */
  async answerExchange(from: string, rows: unknown[], want: WireKey[]): Promise<unknown> {
    const counts = await this.c.receive(from, rows);
    const out: ReplicatedRow[] = [];
    let bytes = 0;
    let answered = 0;
    for (const [kind, namespace, name] of want) {
      const row = this.c.store.replicationRow({ kind, namespace, name });
      const size = row ? JSON.stringify(row).length : 0;
      if (out.length > 0 && bytes + size > this.c.shipping.batchBytes) break;
      if (row && this.c.shipping.sendable(row)) {
        out.push(row);
        bytes += size;
      }
      answered++;
    }
    this.c.stats.syncedRows += out.length;
    return { rows: out, answered, ...counts };
  }

  private async run(peer: string, signal?: AbortSignal): Promise<void> {
    for (let round = 0; round < this.maxRounds && this.c.running(); round++) {
      const mine = this.digest();
      const reply = parseDigestReply(
        await this.c.request(peer, { type: 'digest', buckets: mine.hashes }, signal),
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
  private async exchange(peer: string, send: ObjectKey[], want: WireKey[], signal?: AbortSignal) {
    const rows = send
      .map((k) => this.c.store.replicationRow(k))
      .filter((r): r is ReplicatedRow => !!r && this.c.shipping.sendable(r));
    const outgoing = this.c.shipping.chunks(rows);
    let wantLeft = want;
    for (let i = 0; i < outgoing.length || wantLeft.length > 0; i++) {
      const batch = outgoing[i] ?? [];
      const asked = wantLeft.slice(0, 1000);
      const reply: ExchangeReply = parseExchangeReply(
        await this.c.request(peer, { type: 'exchange', rows: batch, want: asked }, signal),
        asked.length,
      );
      this.c.stats.syncedRows += batch.length;
      await this.c.receive(peer, reply.rows);
      // A reply that answers none of a non-empty want list would loop forever: stop until next time.
      if (asked.length > 0 && reply.answered === 0 && i >= outgoing.length) return;
      wantLeft = wantLeft.slice(reply.answered);
    }
  }

  private digest(): Digest {
    const stamp = this.c.store.versionStamp();
    if (this.digestCache?.stamp !== stamp) {
      const digest = buildDigest(this.c.store.replicationVersions(), this.buckets, (v) =>
        this.c.shipping.expired(v),
      );
      this.digestCache = { stamp, digest };
    }
    return this.digestCache.digest;
  }
}
