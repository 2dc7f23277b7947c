// The desired-state store embedded in every host: objects as JSON rows in SQLite (node:sqlite,
// no native addon), each write durable before it is acknowledged (WAL, synchronous=FULL), so a write
// that returned survives kill -9 and power loss. Implements the Store contract (store.ts): Kubernetes
// semantics for resourceVersion, generation, status subresource, finalizers, selectors and watch.
//
// Ready for replication between hosts (src/store/replication/): each row keeps two versions, each a
// hybrid-logical-clock timestamp and its writer — one for the main part (metadata + spec) and one for
// the status part — so concurrent spec and status writes never clobber each other. Deletions stay as
// tombstone rows (invisible to get/list) until purged; applyReplicated() merges a row from a peer
// (last-writer-wins per part) and emits watch events like a local write. One process per database
// file: the revision counter and watch history live in this process.
//
// With a RowAuthority (replication between hosts that do not trust each other's rows), every part
// version written here is signed by this host, and every part received is checked — signature, the
// writer's binding to its key, whether that writer may write it, its clock — before it is merged
// (row-authority.ts).

// Writes come one durable transaction each, or — through groupCommit() — many to one transaction and
// one fsync, each acknowledged only after that commit (transactions.ts). The parts: object-rules.ts
// (what a write does to an object), sqlite-table.ts (rows, statements, revision), local-versions.ts
// (versions and proofs of this host's writes), replicated-merge.ts (a peer's row), list-pages.ts,
// watch-hub.ts. This file stays above 400 lines because it is the one class every caller holds: the
// Store contract plus the entry points replication uses, each a few lines that hand over to those parts.

import { randomUUID } from 'node:crypto';
import { type Log, silentLogger } from '../log/logger.ts';
import type { ObjectOf } from '../model/kinds.ts';
import type { XObject } from '../model/object.ts';
import { BadRequestError, type ErrorObjectRef } from './errors.ts';
import { HybridLogicalClock, hlcLowerBound } from './hlc.ts';
import { listPage } from './list-pages.ts';
import { LocalVersions } from './local-versions.ts';
import {
  checkSize,
  dryRunResult,
  objectKeyOf,
  type Plan,
  planCreate,
  planDelete,
  planUpdate,
} from './object-rules.ts';
import {
  type ApplyOutcome,
  type ApplyResult,
  type ChangeRecord,
  checkReplicatedRow,
  type MergeContext,
  mergeReplicated,
  type ReplicatedRow,
  type RowVersion,
  toObject,
  toReplicatedRow,
  withoutRevision,
} from './replicated-merge.ts';
import type { RowAuthority, WriterBindings } from './row-authority.ts';
import { parseFieldSelector, parseLabelSelector } from './selectors.ts';
import { allRows, iterateRows } from './sqlite-rows.ts';
import { type ChangeRow, ObjectTable } from './sqlite-table.ts';
import type {
  DeleteOptions,
  ListOptions,
  ListResult,
  ObjectKey,
  Store,
  UpdateOptions,
  WatchEvent,
  WatchOptions,
  WriteOptions,
} from './store.ts';
import { compactPurged, compactThrough, replayFromTable } from './store-history.ts';
import type { GroupCommitStats } from './transactions.ts';
import { type ChangeEvent, previousOf, WatchHub } from './watch-hub.ts';

const CHANGES_BATCH = 500;

export type {
  ApplyOutcome,
  ApplyResult,
  ChangeRecord,
  ReplicatedRow,
  RowVersion,
} from './replicated-merge.ts';

export interface OpenStoreInit {
  /** The database file (its directory is created), or ':memory:' for a store that is not durable. */
  path: string;
  /** This host's id, recorded as the writer of each version. Default: an id generated once and
   *  kept in the database. */
  writer?: string;
  /** Whether a kind lives in namespaces (false: cluster-scoped, namespace ''). */
  namespaced: (kind: string) => boolean;
  /** How many change events watches can replay. Default 10000. */
  historySize?: number;
  log?: Log;
  /** Wall clock in ms for the hybrid logical clock and expiry (tests). Default Date.now. */
  wallClock?: () => number;
  /** Kinds whose objects expire (e.g. Event → 1 h): see expireObjects(). */
  ttlMs?: Readonly<Record<string, number>>;
  /** How often expired objects are removed. Default: a quarter of the shortest TTL, at most a minute. */
  expirySweepMs?: number;
  /** Signs this host's part versions and checks those from peers (replication with untrusted peers). */
  authority?: RowAuthority;
}

export function openStore(init: OpenStoreInit): SqliteStore {
  return new SqliteStore(init);
}

export class SqliteStore implements Store {
  readonly path: string;
  readonly writer: string;
  private readonly table: ObjectTable;
  private readonly namespaced: (kind: string) => boolean;
  private readonly log: Log;
  private readonly clock: HybridLogicalClock;
  private readonly versions: LocalVersions;
  private readonly hub: WatchHub;
  private closed = false;
  private readonly authority: RowAuthority | undefined;
  /** Writer names bound to the peer ids that sign for them (row-authority.ts), read through to SQL. */
  readonly bindings: WriterBindings;
  private readonly ttl: ReadonlyMap<string, number>;
  private readonly wallClock: () => number;
  private expiryTimer?: NodeJS.Timeout;
  private readonly localWriteListeners = new Set<(key: ObjectKey) => void>();
  /** What a merge of a peer's row uses of this store (replicated-merge.ts). */
  private readonly mergeContext: MergeContext;

  constructor(init: OpenStoreInit) {
    this.path = init.path;
    this.namespaced = init.namespaced;
    this.log = init.log ?? silentLogger.root;
    this.table = new ObjectTable(init.path, this.log);
    const t = this.table;
    this.bindings = t.bindings;
    this.authority = init.authority;
    try {
      let writer = init.writer ?? t.meta('writer');
      if (!writer) {
        writer = randomUUID();
        t.setMeta('writer', writer);
      }
      this.writer = writer;
      this.clock = new HybridLogicalClock({ writer, wallClock: init.wallClock, last: t.meta('hlc') });
      this.versions = new LocalVersions(
        { table: t, clock: this.clock, authority: this.authority },
        { writer },
      );
      this.versions.takeIdentity();
    } catch (err) {
      t.close();
      throw err;
    }
    this.hub = new WatchHub({ historySize: init.historySize, startRevision: t.rev, log: this.log });
    this.ttl = new Map(Object.entries(init.ttlMs ?? {}));
    this.wallClock = init.wallClock ?? Date.now;
    this.mergeContext = {
      authority: this.authority,
      bindings: this.bindings,
      clock: this.clock,
      expired: (kind, hlc) => this.expired(kind, hlc),
      checkReplicated: (row) => checkReplicatedRow(row, (obj) => this.keyOf(obj)),
      readRow: (key) => t.readRow(key),
      writeRow: (key, revision, deleted, main, status, body) =>
        t.writeRow(key, revision, deleted, main, status, body, this.clock.peek()),
      setProofs: (key, proof, statusProof) => t.setProofs(key, proof, statusProof),
    };
    if (this.ttl.size > 0) {
      this.expireObjects();
      const every = init.expirySweepMs ?? Math.min(60_000, Math.max(50, Math.min(...this.ttl.values()) / 4));
      this.expiryTimer = setInterval(() => {
        try {
          this.expireObjects();
        } catch (err) {
          this.log.error({ err }, 'removing expired objects failed; trying again at the next sweep');
        }
      }, every);
      this.expiryTimer.unref();
    }
  }

  get<K extends string>(key: ObjectKey<K>): ObjectOf<K> | undefined {
    const ns = this.namespaceOf(key.kind, key.namespace);
    const row = this.table.readRow({ kind: key.kind, namespace: ns, name: key.name });
    return row && !row.deleted ? toObject<ObjectOf<K>>(row.body, row.revision) : undefined;
  }

  list<K extends string>(kind: K, opts: ListOptions = {}): ListResult<ObjectOf<K>> {
    const ns = this.namespaced(kind) && opts.namespace ? opts.namespace : undefined;
    return listPage(this.table, kind, opts, ns, (namespace) => this.namespaceOf(kind, namespace));
  }

  create<T extends XObject>(obj: T, opts: WriteOptions = {}): T {
    const key = this.keyOf(obj);
    return this.mutate<T>(key, opts.dryRun, (existing) => planCreate(obj, key, existing));
  }

  update<T extends XObject>(obj: T, opts: UpdateOptions = {}): T {
    const key = this.keyOf(obj);
    return this.mutate<T>(key, opts.dryRun, (existing) => planUpdate(obj, key, existing, opts));
  }

  delete<K extends string>(key: ObjectKey<K>, opts: DeleteOptions = {}): ObjectOf<K> {
    const ref = { kind: key.kind, namespace: this.namespaceOf(key.kind, key.namespace), name: key.name };
    return this.mutate<ObjectOf<K>>(ref, opts.dryRun, (existing) => planDelete(ref, existing, opts));
  }

  groupCommit<T>(write: () => T): Promise<T> {
    return this.table.tx.enqueue(write);
  }

  /** How many group commits carried how many writes (bench and tests). */
  groupCommitStats(): Readonly<GroupCommitStats> {
    return this.table.tx.stats;
  }

  watch<K extends string>(
    kind: K,
    opts: WatchOptions,
    onEvent: (ev: WatchEvent<ObjectOf<K>>) => void,
  ): () => void {
    const labels = parseLabelSelector(opts.labelSelector ?? '');
    const fields = parseFieldSelector(opts.fieldSelector ?? '');
    const rv = opts.resourceVersion;
    let fromRevision: number | undefined;
    if (rv !== undefined && rv !== '' && rv !== '0') {
      if (!/^\d+$/.test(rv)) {
        throw new BadRequestError(
          `invalid resourceVersion "${rv}": expected a revision number from a list or get`,
        );
      }
      fromRevision = Number(rv);
    }
    const namespace = this.namespaced(kind) && opts.namespace ? opts.namespace : undefined;
    const filter = { kind, namespace, labels, fields, fromRevision };
    if (fromRevision === undefined || fromRevision >= this.hub.oldest) return this.hub.watch(filter, onEvent);
    // Older than this process's history (a client resuming across a restart): what changed up to the
    // history's start comes from the table, then the history goes on exactly (store-history.ts).
    replayFromTable(
      this.table,
      { ...filter, fromRevision },
      this.hub.oldest,
      onEvent as (ev: WatchEvent) => void,
    );
    return this.hub.watch({ ...filter, fromRevision: this.hub.oldest }, onEvent);
  }

  revision(): string {
    return String(this.table.rev);
  }

  /** Every row (objects and tombstones) changed after `revision`, oldest first, read in batches
   *  so the store can be written between steps. */
  *changesSince(revision: number | string = 0, batchSize = CHANGES_BATCH): Generator<ChangeRecord> {
    let after = Number(revision);
    for (;;) {
      const rows = allRows<ChangeRow>(this.table.sql.changes, after, batchSize);
      for (const r of rows) {
        yield { ...toReplicatedRow(r, r), revision: r.revision, object: toObject(r.body, r.revision) };
        after = r.revision;
      }
      if (rows.length < batchSize) return;
    }
  }

  /** Removes tombstones whose deletion is older than `olderThanMs` (by its clock timestamp);
   *  returns how many. Keep them longer than any partition replication promises to heal. */
  purgeTombstones(olderThanMs: number, now: number = Date.now()): number {
    const t = this.table;
    return t.tx.run(() => {
      const purged = allRows<{ kind: string; revision: number }>(
        t.sql.purge,
        hlcLowerBound(now - olderThanMs),
      );
      if (purged.length) t.stamp++;
      // A deletion no longer in the table cannot be replayed: watches from before it are Expired.
      compactPurged(t, purged);
      return purged.length;
    });
  }

  /**
   * Removes every object of a kind with a TTL (ttlMs) whose main part was last written (its hybrid-clock
   * timestamp, the same on every host) longer ago than the TTL: the row goes without a tombstone, watchers
   * get DELETED, and the watch history forgets the object's earlier events. Every host does this by
   * itself on the same timestamps, so no host ships a deletion; mergeReplicated() refuses expired rows, so
   * a host that has not swept yet cannot bring one back. Runs every expirySweepMs; returns how many rows.
   */
  expireObjects(now: number = this.wallClock()): number {
    if (this.closed || this.ttl.size === 0) return 0;
    type Expired = { namespace: string; name: string; revision: number; deleted: number; body: string };
    const t = this.table;
    const events: ChangeEvent[] = [];
    let removed = 0;
    t.tx.run(() => {
      let rev = t.rev;
      for (const [kind, ttl] of this.ttl) {
        for (const r of allRows<Expired>(t.sql.expire, kind, hlcLowerBound(now - ttl))) {
          removed++;
          if (r.deleted) continue;
          rev++;
          const object = toObject(r.body, rev);
          events.push({ revision: rev, type: 'DELETED', kind, object, previous: previousOf(object) });
        }
      }
      if (rev !== t.rev) t.setMeta('revision', String(rev));
      // Expired rows leave the table: their deletions can be replayed from this process's history only.
      for (const kind of new Set(events.map((ev) => ev.kind))) compactThrough(t, kind, rev);
      t.rev = rev;
      if (removed > 0) t.stamp++;
      t.tx.afterCommit(() => {
        for (const kind of this.ttl.keys()) {
          const of = events.filter((ev) => ev.kind === kind);
          this.hub.forget(
            kind,
            new Set(of.map((ev) => `${ev.object.metadata.namespace ?? ''}/${ev.object.metadata.name}`)),
          );
        }
        for (const ev of events) this.hub.publish(ev);
      });
    });
    return removed;
  }

  /** Whether a row of `kind` last written at `hlc` has outlived its kind's TTL. */
  private expired(kind: string, hlc: string, now: number = this.wallClock()): boolean {
    const ttl = this.ttl.get(kind);
    return ttl !== undefined && hlc < hlcLowerBound(now - ttl);
  }

  /** Commits the writes groupCommit() has gathered, then closes. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.expiryTimer);
    this.table.tx.close();
    this.hub.clear();
    this.table.close();
  }

  /** The row of `key` as replication ships it, tombstones included; undefined if never seen
   *  (or purged). */
  replicationRow(key: ObjectKey): ReplicatedRow | undefined {
    const ref = { kind: key.kind, namespace: this.namespaceOf(key.kind, key.namespace), name: key.name };
    const row = this.table.readRow(ref);
    return row && { ...toReplicatedRow(ref, row), object: JSON.parse(row.body) as XObject };
  }

  /** The versions of every row (tombstones included) in key order, without bodies. */
  *replicationVersions(): Generator<RowVersion> {
    type VersionRow = Omit<RowVersion, 'deleted' | 'statusHlc'> & {
      deleted: number;
      status_hlc: string;
      unsigned: number;
    };
    for (const r of iterateRows<VersionRow>(this.table.sql.versions)) {
      // Under an authority, a row with a part nobody signed (kept from before signing) is not offered:
      // peers would refuse it. Its writer signs it when it runs this version; then it is.
      if (this.authority && r.unsigned) continue;
      yield {
        kind: r.kind,
        namespace: r.namespace,
        name: r.name,
        deleted: r.deleted === 1,
        hlc: r.hlc,
        statusHlc: r.status_hlc,
      };
    }
  }

  /** A number that changes whenever any row is written or purged (a cache key for digests). */
  versionStamp(): number {
    return this.table.stamp;
  }

  /** Calls `listener` after each local write commits (create, update, status, delete), with the
   *  object's key, so replication can push it. Not called for applyReplicated(). */
  onLocalWrite(listener: (key: ObjectKey) => void): () => void {
    this.localWriteListeners.add(listener);
    return () => this.localWriteListeners.delete(listener);
  }

  /**
   * Merges a row received from a peer: for each part (main: metadata + spec + deletion; status),
   * the version with the higher hybrid-logical-clock timestamp wins (the writer id is its last
   * field, so ties cannot happen between hosts). What changed is stored under a new local
   * revision, announced to watchers like a local write (ADDED / MODIFIED / DELETED), and this
   * host's clock moves past the received timestamps. The caller validates the object first.
   * Throws BadRequestError for a row that does not describe itself consistently, and RowRefusedError
   * when none of its newer parts is taken (a clock too far ahead; with an authority: unsigned, signed by
   * another key than its writer's, or written by a host that may not); nothing is stored then.
   */
  applyReplicated(row: ReplicatedRow): ApplyResult {
    const [outcome] = this.applyReplicatedBatch([row]);
    if (!outcome.ok) throw outcome.error;
    return outcome.result;
  }

  /**
   * Merges rows received together (one push or exchange) in ONE transaction, so the batch costs one
   * fsync instead of one per row. Each row is merged exactly as applyReplicated() does, inside its
   * own savepoint: a row that fails (BadRequestError, RowRefusedError, …) is rolled back alone and
   * reported in its outcome, and the others still apply; a row of which one part was refused stores the
   * other and reports the refusal with it. Each changed row gets its own local
   * revision, in the order given; watch events are published after the commit, one per row, in
   * that order. Throws (and stores nothing) only if the transaction itself cannot commit.
   */
  applyReplicatedBatch(rows: readonly ReplicatedRow[]): ApplyOutcome[] {
    const t = this.table;
    return t.tx.run(() =>
      rows.map((row): ApplyOutcome => {
        try {
          const merged = t.tx.run(() => mergeReplicated(this.mergeContext, row, t.rev + 1));
          const ev = merged.event;
          if (ev) t.tx.afterCommit(() => this.hub.publish(ev));
          return { ok: true, result: merged.result, ...(merged.refused ? { refused: merged.refused } : {}) };
        } catch (err) {
          return { ok: false, error: err as Error };
        }
      }),
    );
  }

  /** Runs one write: reads the stored object (or absence), decides (object-rules.ts) and writes the
   *  outcome atomically — its own transaction, or a savepoint of a group commit. `T` is the kind's object
   *  type: what is written is the caller's object of the same kind (or, for a delete, the stored one). */
  private mutate<T extends XObject>(
    key: ErrorObjectRef,
    dryRun: boolean | undefined,
    decide: (existing?: XObject) => Plan,
  ): T {
    const t = this.table;
    if (dryRun) {
      const plan = decide(this.get(key));
      if (plan.op === 'none') return plan.result as T;
      if (plan.op === 'put') checkSize(key, JSON.stringify(withoutRevision(plan.object)));
      if (plan.part === 'status')
        this.versions.checkStatus(key, withoutRevision(plan.object), t.readRow(key));
      return dryRunResult<T>(plan);
    }
    const done = t.tx.run((): { result: XObject; event?: ChangeEvent } => {
      const row = t.readRow(key);
      const plan = this.versions.handOver(
        decide(row && !row.deleted ? toObject(row.body, row.revision) : undefined),
        row,
      );
      if (plan.op === 'none') return { result: plan.result };
      const revision = t.rev + 1;
      const object = withoutRevision(plan.object);
      const body = JSON.stringify(object);
      if (plan.op === 'put') checkSize(key, body);
      const { main, status } = this.versions.versionsOf(key, plan, object, row);
      t.writeRow(key, revision, plan.op === 'delete', main, status, body, this.clock.peek());
      const stored = toObject(body, revision);
      const event: ChangeEvent = {
        revision,
        type: plan.op === 'delete' ? 'DELETED' : plan.type,
        kind: key.kind,
        object: stored,
        previous: previousOf(plan.previous),
      };
      t.tx.afterCommit(() => this.announce(key, event));
      // The event's object is frozen for watchers once published; the caller gets its own copy.
      return { result: structuredClone(stored), event };
    });
    return done.result as T;
  }

  /** After a local write commits: its watch event, then the local-write listeners (replication). */
  private announce(key: ErrorObjectRef, event: ChangeEvent): void {
    this.hub.publish(event);
    for (const listener of this.localWriteListeners) {
      try {
        listener(key);
      } catch (err) {
        this.log.error({ err }, `local-write listener threw on ${key.kind} ${key.namespace}/${key.name}`);
      }
    }
  }

  private namespaceOf(kind: string, namespace: string | undefined): string {
    return this.namespaced(kind) ? namespace || 'default' : '';
  }

  /** The key of an object a client sent, after checking it names one. */
  private keyOf(obj: XObject): ErrorObjectRef {
    return objectKeyOf(obj, (kind, ns) => this.namespaceOf(kind, ns));
  }
}
