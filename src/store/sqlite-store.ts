// The desired-state store embedded in every host: objects as JSON rows in SQLite (node:sqlite,
// no native addon), one durable transaction per write (WAL, synchronous=FULL), so a write that
// returned survives kill -9 and power loss. Implements the Store contract (store.ts): Kubernetes
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

import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { type Log, silentLogger } from '../log/logger.ts';
import type { ObjectOf } from '../model/kinds.ts';
import { isDns1123Label, isDns1123Subdomain } from '../model/names.ts';
import type { ObjectMeta, XObject } from '../model/object.ts';
import {
  AlreadyExistsError,
  BadRequestError,
  ConflictError,
  type ErrorObjectRef,
  HostNameTakenError,
  NotFoundError,
  ObjectTooLargeError,
  type RowRefusedError,
} from './errors.ts';
import { HybridLogicalClock, hlcLowerBound, parseHlc } from './hlc.ts';
import { jsonEqual } from './json-value.ts';
import { MAX_OBJECT_BYTES } from './limits.ts';
import {
  type ApplyResult,
  type MergeContext,
  mergeReplicated,
  type PartVersion,
  parseBase,
  type ReplicatedRow,
  storedStatus,
  toObject,
  type VersionedRow,
  withoutRevision,
} from './replicated-merge.ts';
import type { RowAuthority, WriterBindings } from './row-authority.ts';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.ts';
import { allRows, iterateRows } from './sqlite-rows.ts';
import { migrate } from './sqlite-schema.ts';
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
import { type ChangeEvent, WatchHub } from './watch-hub.ts';

const CHANGES_BATCH = 500;

export type { ApplyResult, ReplicatedRow } from './replicated-merge.ts';

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

/** One row as changesSince() walks it: a ReplicatedRow with this host's revision of the change. */
export interface ChangeRecord extends ReplicatedRow {
  revision: number;
  /** The object with metadata.resourceVersion = revision. */
  object: XObject;
}

/** The versions of one row, without its body: what anti-entropy digests and compares. */
export interface RowVersion {
  kind: string;
  namespace: string;
  name: string;
  deleted: boolean;
  hlc: string;
  statusHlc: string;
}

/** What applyReplicatedBatch() did with one row: its result (and the part it refused, if one was), or why
 *  none of it was applied. */
export type ApplyOutcome =
  | { ok: true; result: ApplyResult; refused?: RowRefusedError }
  | { ok: false; error: Error };

interface Row {
  revision: number;
  deleted: number;
  body: string;
}

interface ChangeRow extends VersionedRow {
  kind: string;
  namespace: string;
  name: string;
}

interface ListRow extends Row {
  namespace: string;
  name: string;
}

/** Which version a write moves: create writes both parts, a status write only the status part,
 *  every other write the main part. */
type Part = 'main' | 'status' | 'both';

/** What a write decided to do, computed from the object currently stored. */
type Plan =
  | { op: 'none'; result: XObject }
  | { op: 'put'; part: Part; type: 'ADDED' | 'MODIFIED'; object: XObject; previous?: XObject }
  | { op: 'delete'; part: Part; object: XObject; previous: XObject };

interface ContinueToken {
  rv: number;
  ns: string;
  name: string;
}

export function openStore(init: OpenStoreInit): SqliteStore {
  return new SqliteStore(init);
}

export class SqliteStore implements Store {
  readonly path: string;
  readonly writer: string;
  private readonly db: DatabaseSync;
  private readonly namespaced: (kind: string) => boolean;
  private readonly log: Log;
  private readonly clock: HybridLogicalClock;
  private readonly hub: WatchHub;
  private rev: number;
  private closed = false;
  private readonly sql: {
    get: StatementSync;
    upsert: StatementSync;
    setMeta: StatementSync;
    getMeta: StatementSync;
    listAll: StatementSync;
    listNs: StatementSync;
    changes: StatementSync;
    purge: StatementSync;
    versions: StatementSync;
    expire: StatementSync;
    writerOf: StatementSync;
    bindWriter: StatementSync;
    unsignedOwn: StatementSync;
    ownRow: StatementSync;
    setProofs: StatementSync;
  };
  /** Whether this host's name is bound to its key here (it is once it has written anything). */
  private selfBound = false;
  private readonly authority: RowAuthority | undefined;
  /** Writer names bound to the peer ids that sign for them (row-authority.ts), read through to SQL. */
  readonly bindings: WriterBindings;
  /** Moves on every row write (local, replicated or purge): tells a digest cache it is stale. */
  private stamp = 0;
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
    if (init.path !== ':memory:') mkdirSync(dirname(init.path), { recursive: true });
    this.db = new DatabaseSync(init.path);
    try {
      this.db.exec('PRAGMA journal_mode = WAL');
      this.db.exec('PRAGMA synchronous = FULL');
      this.db.exec('PRAGMA busy_timeout = 5000');
      migrate(this.db, init.path);
      this.sql = {
        get: this.db.prepare(
          `SELECT revision, deleted, body, hlc, writer, status_hlc, status_writer, proof, status_proof, status_base
           FROM objects WHERE kind = ? AND namespace = ? AND name = ?`,
        ),
        upsert: this.db.prepare(
          `INSERT INTO objects (kind, namespace, name, revision, deleted, hlc, writer, status_hlc, status_writer,
             proof, status_proof, status_base, body)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (kind, namespace, name) DO UPDATE SET revision = excluded.revision,
             deleted = excluded.deleted, hlc = excluded.hlc, writer = excluded.writer,
             status_hlc = excluded.status_hlc, status_writer = excluded.status_writer, proof = excluded.proof,
             status_proof = excluded.status_proof, status_base = excluded.status_base, body = excluded.body`,
        ),
        setMeta: this.db.prepare(
          'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        ),
        getMeta: this.db.prepare('SELECT value FROM meta WHERE key = ?'),
        listAll: this.db.prepare(
          `SELECT namespace, name, revision, body FROM objects
           WHERE kind = ? AND deleted = 0 AND (namespace, name) > (?, ?) ORDER BY namespace, name`,
        ),
        listNs: this.db.prepare(
          `SELECT namespace, name, revision, body FROM objects
           WHERE kind = ? AND deleted = 0 AND namespace = ? AND name > ? ORDER BY name`,
        ),
        changes: this.db.prepare(
          `SELECT kind, namespace, name, revision, deleted, hlc, writer, status_hlc, status_writer, proof,
             status_proof, status_base, body
           FROM objects WHERE revision > ? ORDER BY revision LIMIT ?`,
        ),
        purge: this.db.prepare('DELETE FROM objects WHERE deleted = 1 AND hlc < ?'),
        versions: this.db.prepare(
          `SELECT kind, namespace, name, deleted, hlc, status_hlc,
             (proof = '' OR (status_hlc != '' AND status_proof = '')) AS unsigned
           FROM objects ORDER BY kind, namespace, name`,
        ),
        expire: this.db.prepare(
          'DELETE FROM objects WHERE kind = ? AND hlc < ? RETURNING namespace, name, revision, deleted, body',
        ),
        writerOf: this.db.prepare('SELECT peer_id FROM writers WHERE name = ?'),
        bindWriter: this.db.prepare(
          'INSERT INTO writers (name, peer_id) VALUES (?, ?) ON CONFLICT DO NOTHING',
        ),
        unsignedOwn: this.db.prepare(
          `SELECT kind, namespace, name, revision, deleted, hlc, writer, status_hlc, status_writer, proof,
             status_proof, status_base, body
           FROM objects WHERE (writer = ? AND proof = '') OR (status_writer = ? AND status_proof = '')`,
        ),
        ownRow: this.db.prepare('SELECT 1 AS own FROM objects WHERE writer = ? OR status_writer = ? LIMIT 1'),
        setProofs: this.db.prepare(
          'UPDATE objects SET proof = ?, status_proof = ? WHERE kind = ? AND namespace = ? AND name = ?',
        ),
      };
      this.bindings = {
        peerOf: (name) => (this.sql.writerOf.get(name) as { peer_id: string } | undefined)?.peer_id,
        bind: (name, peerId) => {
          this.sql.bindWriter.run(name, peerId);
        },
      };
      this.rev = Number(this.meta('revision') ?? '0');
      let writer = init.writer ?? this.meta('writer');
      if (!writer) {
        writer = randomUUID();
        this.sql.setMeta.run('writer', writer);
      }
      this.writer = writer;
      this.clock = new HybridLogicalClock({ writer, wallClock: init.wallClock, last: this.meta('hlc') });
      this.authority = init.authority;
      if (this.authority) this.takeIdentity(this.authority);
    } catch (err) {
      this.db.close();
      throw err;
    }
    this.hub = new WatchHub({ historySize: init.historySize, startRevision: this.rev, log: this.log });
    this.ttl = new Map(Object.entries(init.ttlMs ?? {}));
    this.wallClock = init.wallClock ?? Date.now;
    this.mergeContext = {
      authority: this.authority,
      bindings: this.bindings,
      clock: this.clock,
      expired: (kind, hlc) => this.expired(kind, hlc),
      checkReplicated: (row) => this.checkReplicated(row),
      readRow: (key) => this.readRow(key),
      writeRow: (key, revision, deleted, main, status, body) =>
        this.writeRow(key, revision, deleted, main, status, body),
      setProofs: (key, proof, statusProof) => {
        this.sql.setProofs.run(proof, statusProof, key.kind, key.namespace, key.name);
        this.stamp++;
      },
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
    const row = this.readRow({ kind: key.kind, namespace: ns, name: key.name });
    return row && !row.deleted ? toObject<ObjectOf<K>>(row.body, row.revision) : undefined;
  }

  list<K extends string>(kind: K, opts: ListOptions = {}): ListResult<ObjectOf<K>> {
    const labels = parseLabelSelector(opts.labelSelector ?? '');
    const fields = parseFieldSelector(opts.fieldSelector ?? '');
    const limit = opts.limit ?? 0;
    if (!Number.isInteger(limit) || limit < 0) {
      throw new BadRequestError(`limit must be a non-negative integer, got ${opts.limit}`);
    }
    const token = opts.continue ? decodeContinue(opts.continue) : undefined;
    const ns = this.namespaced(kind) && opts.namespace ? opts.namespace : undefined;
    const rows =
      ns === undefined
        ? iterateRows<ListRow>(this.sql.listAll, kind, token?.ns ?? '', token?.name ?? '')
        : iterateRows<ListRow>(this.sql.listNs, kind, ns, token?.ns === ns ? token.name : '');
    const items: ObjectOf<K>[] = [];
    let more = false;
    for (const row of rows) {
      const obj = toObject<ObjectOf<K>>(row.body, row.revision);
      if (!matchesFields(fields, obj) || !matchesLabels(labels, obj.metadata.labels)) continue;
      if (limit > 0 && items.length === limit) {
        more = true;
        break;
      }
      items.push(obj);
    }
    // Every page reports the first page's revision: a watch from it misses nothing any page missed.
    const rv = token?.rv ?? this.rev;
    const result: ListResult<ObjectOf<K>> = { items, resourceVersion: String(rv) };
    if (more) {
      const last = items[items.length - 1];
      result.continue = encodeContinue({
        rv,
        ns: this.namespaceOf(kind, last.metadata.namespace),
        name: last.metadata.name,
      });
    }
    return result;
  }

  create<T extends XObject>(obj: T, opts: WriteOptions = {}): T {
    const key = this.keyOf(obj);
    return this.mutate<T>(key, opts.dryRun, (existing) => {
      if (existing) throw new AlreadyExistsError(key);
      const metadata: ObjectMeta = {
        ...obj.metadata,
        namespace: key.namespace || undefined,
        uid: randomUUID(),
        creationTimestamp: timestamp(),
        generation: 1,
        resourceVersion: undefined,
        deletionTimestamp: undefined,
      };
      // The kinds have a status subresource: status is not taken on create, as in Kubernetes.
      return { op: 'put', part: 'both', type: 'ADDED', object: { ...obj, metadata, status: undefined } };
    });
  }

  update<T extends XObject>(obj: T, opts: UpdateOptions = {}): T {
    const key = this.keyOf(obj);
    return this.mutate<T>(key, opts.dryRun, (existing) => {
      if (!existing) throw new NotFoundError(key);
      const wanted = obj.metadata.resourceVersion;
      if (wanted && wanted !== existing.metadata.resourceVersion) throw new ConflictError(key);
      const old = withoutRevision(existing);
      let next: XObject;
      if (opts.subresource === 'status') {
        next = { ...old, status: obj.status };
      } else {
        const specChanged = !jsonEqual(obj.spec, old.spec);
        const metadata: ObjectMeta = {
          ...obj.metadata,
          namespace: key.namespace || undefined,
          uid: old.metadata.uid,
          creationTimestamp: old.metadata.creationTimestamp,
          generation: (old.metadata.generation ?? 1) + (specChanged ? 1 : 0),
          deletionTimestamp: old.metadata.deletionTimestamp,
          resourceVersion: undefined,
        };
        next = { ...obj, metadata, status: old.status };
        if (next.metadata.deletionTimestamp && !next.metadata.finalizers?.length) {
          return { op: 'delete', part: 'main', object: next, previous: existing };
        }
      }
      if (jsonEqual(next, old)) return { op: 'none', result: existing };
      const part = opts.subresource === 'status' ? 'status' : 'main';
      return { op: 'put', part, type: 'MODIFIED', object: next, previous: existing };
    });
  }

  delete<K extends string>(key: ObjectKey<K>, opts: DeleteOptions = {}): ObjectOf<K> {
    const ref = { kind: key.kind, namespace: this.namespaceOf(key.kind, key.namespace), name: key.name };
    return this.mutate<ObjectOf<K>>(ref, opts.dryRun, (existing) => {
      if (!existing) throw new NotFoundError(ref);
      const pre = opts.preconditions;
      if (pre?.uid && pre.uid !== existing.metadata.uid) {
        throw new ConflictError(
          ref,
          `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${existing.metadata.uid}`,
        );
      }
      if (pre?.resourceVersion && pre.resourceVersion !== existing.metadata.resourceVersion) {
        throw new ConflictError(
          ref,
          `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ` +
            `ResourceVersion in object meta: ${existing.metadata.resourceVersion}`,
        );
      }
      const old = withoutRevision(existing);
      if (!old.metadata.finalizers?.length) {
        return { op: 'delete', part: 'main', object: old, previous: existing };
      }
      if (old.metadata.deletionTimestamp) return { op: 'none', result: existing };
      const metadata: ObjectMeta = {
        ...old.metadata,
        deletionTimestamp: timestamp(),
        generation: (old.metadata.generation ?? 1) + 1,
      };
      return { op: 'put', part: 'main', type: 'MODIFIED', object: { ...old, metadata }, previous: existing };
    });
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
    return this.hub.watch({ kind, namespace, labels, fields, fromRevision }, onEvent);
  }

  revision(): string {
    return String(this.rev);
  }

  /** Every row (objects and tombstones) changed after `revision`, oldest first, read in batches
   *  so the store can be written between steps. */
  *changesSince(revision: number | string = 0, batchSize = CHANGES_BATCH): Generator<ChangeRecord> {
    let after = Number(revision);
    for (;;) {
      const rows = allRows<ChangeRow>(this.sql.changes, after, batchSize);
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
    const result = this.sql.purge.run(hlcLowerBound(now - olderThanMs));
    if (result.changes) this.stamp++;
    return Number(result.changes);
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
    const events: ChangeEvent[] = [];
    let rev = this.rev;
    let removed = 0;
    this.db.exec('BEGIN IMMEDIATE');
    try {
      for (const [kind, ttl] of this.ttl) {
        for (const r of allRows<Expired>(this.sql.expire, kind, hlcLowerBound(now - ttl))) {
          removed++;
          if (r.deleted) continue;
          rev++;
          const previous = toObject(r.body, r.revision);
          events.push({ revision: rev, type: 'DELETED', kind, object: toObject(r.body, rev), previous });
        }
      }
      if (rev !== this.rev) this.sql.setMeta.run('revision', String(rev));
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
    this.rev = rev;
    if (removed > 0) this.stamp++;
    for (const kind of this.ttl.keys()) {
      const of = events.filter((ev) => ev.kind === kind);
      this.hub.forget(
        kind,
        new Set(of.map((ev) => `${ev.object.metadata.namespace ?? ''}/${ev.object.metadata.name}`)),
      );
    }
    for (const ev of events) this.hub.publish(ev);
    return removed;
  }

  /** Whether a row of `kind` last written at `hlc` has outlived its kind's TTL. */
  private expired(kind: string, hlc: string, now: number = this.wallClock()): boolean {
    const ttl = this.ttl.get(kind);
    return ttl !== undefined && hlc < hlcLowerBound(now - ttl);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.expiryTimer);
    this.hub.clear();
    this.db.close();
  }

  /** The row of `key` as replication ships it, tombstones included; undefined if never seen
   *  (or purged). */
  replicationRow(key: ObjectKey): ReplicatedRow | undefined {
    const ref = { kind: key.kind, namespace: this.namespaceOf(key.kind, key.namespace), name: key.name };
    const row = this.readRow(ref);
    return row && { ...toReplicatedRow(ref, row), object: JSON.parse(row.body) as XObject };
  }

  /** The versions of every row (tombstones included) in key order, without bodies. */
  *replicationVersions(): Generator<RowVersion> {
    type VersionRow = {
      kind: string;
      namespace: string;
      name: string;
      deleted: number;
      hlc: string;
      status_hlc: string;
      unsigned: number;
    };
    for (const r of iterateRows<VersionRow>(this.sql.versions)) {
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
    return this.stamp;
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
    const outcomes: ApplyOutcome[] = [];
    const events: ChangeEvent[] = [];
    let rev = this.rev;
    let wrote = false;
    this.db.exec('BEGIN IMMEDIATE');
    try {
      for (const row of rows) {
        this.db.exec('SAVEPOINT replicated_row');
        try {
          const merged = mergeReplicated(this.mergeContext, row, rev + 1);
          this.db.exec('RELEASE replicated_row');
          if (merged.revision !== undefined) {
            wrote = true;
            rev = Math.max(rev, merged.revision);
          }
          if (merged.event) events.push(merged.event);
          outcomes.push({
            ok: true,
            result: merged.result,
            ...(merged.refused ? { refused: merged.refused } : {}),
          });
        } catch (err) {
          this.db.exec('ROLLBACK TO replicated_row');
          this.db.exec('RELEASE replicated_row');
          outcomes.push({ ok: false, error: err as Error });
        }
      }
      // A row that only moved versions rewrites its old revision: keep the stored counter at the top.
      if (wrote) this.sql.setMeta.run('revision', String(rev));
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
    this.rev = rev;
    if (wrote) this.stamp++;
    for (const ev of events) this.hub.publish(ev);
    return outcomes;
  }

  /** With an authority: refuses a name bound here to another key (another host has it), binds this host's
   *  name to its key if it has written anything (a fresh store binds it with its first write: a host that
   *  turns out, at join, to have another's name leaves no binding of that name behind), and signs the parts
   *  it wrote before it signed its writes (a store from an older version, or kept while the host ran alone). */
  private takeIdentity(a: RowAuthority): void {
    const bound = this.bindings.peerOf(this.writer);
    if (bound !== undefined && bound !== a.peerId) throw new HostNameTakenError(this.writer, bound, a.peerId);
    if (bound === undefined && !this.sql.ownRow.get(this.writer, this.writer)) return;
    this.db.exec('BEGIN IMMEDIATE');
    try {
      this.bindings.bind(this.writer, a.peerId);
      this.selfBound = true;
      for (const r of allRows<ChangeRow>(this.sql.unsignedOwn, this.writer, this.writer)) {
        const key = { kind: r.kind, namespace: r.namespace, name: r.name };
        const obj = JSON.parse(r.body) as XObject;
        const ownMain = r.writer === this.writer && !r.proof;
        const ownStatus = r.status_writer === this.writer && !r.status_proof && r.status_hlc !== '';
        this.sql.setProofs.run(
          ownMain ? a.proveMain(key, r.hlc, r.deleted === 1, obj) : r.proof,
          ownStatus ? a.proveStatus(key, r.status_hlc, obj.status, parseBase(r.status_base)) : r.status_proof,
          r.kind,
          r.namespace,
          r.name,
        );
      }
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  /** Reads the stored object (or absence), decides, and writes the outcome in one transaction. */
  /** Runs one write. `T` is the kind's object type: what is written is the caller's object of the
   *  same kind (or, for a delete, the stored one), so the result is one too. */
  private mutate<T extends XObject>(
    key: ErrorObjectRef,
    dryRun: boolean | undefined,
    decide: (existing?: XObject) => Plan,
  ): T {
    if (dryRun) {
      const plan = decide(this.get(key));
      if (plan.op === 'none') return plan.result as T;
      if (plan.op === 'put') checkSize(key, JSON.stringify(withoutRevision(plan.object)));
      const row = this.readRow(key);
      if (this.authority && plan.part === 'status')
        this.authority.localStatus(key, withoutRevision(plan.object), this.writer, row && storedStatus(row));
      return dryRunResult<T>(plan);
    }
    this.db.exec('BEGIN IMMEDIATE');
    let plan: Plan;
    let revision: number;
    try {
      const row = this.readRow(key);
      plan = this.handOver(decide(row && !row.deleted ? toObject(row.body, row.revision) : undefined), row);
      if (plan.op === 'none') {
        this.db.exec('ROLLBACK');
        return plan.result as T;
      }
      revision = this.rev + 1;
      const object = withoutRevision(plan.object);
      const body = JSON.stringify(object);
      if (plan.op === 'put') checkSize(key, body);
      const { main, status } = this.versionsOf(key, plan, object, row);
      this.writeRow(key, revision, plan.op === 'delete', main, status, body);
      this.db.exec('COMMIT');
      this.rev = revision;
      this.stamp++;
      plan = { ...plan, object: toObject(JSON.stringify(object), revision) };
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
    this.hub.publish({
      revision,
      type: plan.op === 'delete' ? 'DELETED' : plan.type,
      kind: key.kind,
      object: plan.object,
      previous: plan.previous,
    });
    for (const listener of this.localWriteListeners) {
      try {
        listener(key);
      } catch (err) {
        this.log.error({ err }, `local-write listener threw on ${key.kind} ${key.namespace}/${key.name}`);
      }
    }
    // The event's object is frozen for watchers; the caller gets its own copy.
    return structuredClone(plan.object) as T;
  }

  /** With an authority: a spec change that moves the status to another owner (an instance bound to
   *  another host) clears the status in the same write, so the old owner's status does not outlive it. */
  private handOver(plan: Plan, row: VersionedRow | undefined): Plan {
    if (!this.authority || plan.op !== 'put' || plan.part !== 'main' || !row || row.deleted) return plan;
    const before = JSON.parse(row.body) as XObject;
    if (before.status === undefined || !this.authority.policy.statusOwnerChanged(before, plan.object))
      return plan;
    return { ...plan, part: 'both', object: { ...plan.object, status: undefined } };
  }

  /** The versions (with this host's proofs, under an authority) of a local write: new ones for the parts
   *  it writes, the stored ones for the part it keeps. Throws ForbiddenError for a status this host may
   *  not write. */
  private versionsOf(
    key: ErrorObjectRef,
    plan: Exclude<Plan, { op: 'none' }>,
    object: XObject,
    row: VersionedRow | undefined,
  ): { main: PartVersion; status: PartVersion } {
    const a = this.authority;
    if (a && !this.selfBound) this.bindSelf(a);
    const base =
      a && plan.part === 'status'
        ? a.localStatus(key, object, this.writer, row && storedStatus(row))
        : undefined;
    const hlc = this.clock.now();
    const main: PartVersion =
      plan.part === 'status' && row
        ? { hlc: row.hlc, writer: row.writer, proof: row.proof }
        : { hlc, writer: this.writer, proof: a?.proveMain(key, hlc, plan.op === 'delete', object) ?? '' };
    const status: PartVersion =
      plan.part === 'main' && row
        ? { hlc: row.status_hlc, writer: row.status_writer, proof: row.status_proof, base: row.status_base }
        : {
            hlc,
            writer: this.writer,
            proof: a?.proveStatus(key, hlc, object.status, base) ?? '',
            base: base ? JSON.stringify(base) : '',
          };
    return { main, status };
  }

  /** Inside a transaction, before this host's first write: binds its name to its key, unless a peer's rows
   *  already bound it to another (then this host has another's name and must not write). */
  private bindSelf(a: RowAuthority): void {
    const bound = this.bindings.peerOf(this.writer);
    if (bound !== undefined && bound !== a.peerId) throw new HostNameTakenError(this.writer, bound, a.peerId);
    // Known bound once it is read back committed: a write rolled back takes its binding with it.
    if (bound === a.peerId) this.selfBound = true;
    else this.bindings.bind(this.writer, a.peerId);
  }

  /** Inside a transaction: stores one row and the revision and clock it moved to. */
  private writeRow(
    key: ErrorObjectRef,
    revision: number,
    deleted: boolean,
    main: PartVersion,
    status: PartVersion,
    body: string,
  ): void {
    this.sql.upsert.run(
      key.kind,
      key.namespace,
      key.name,
      revision,
      deleted ? 1 : 0,
      main.hlc,
      main.writer,
      status.hlc,
      status.writer,
      main.proof,
      status.proof,
      status.base ?? '',
      body,
    );
    this.sql.setMeta.run('revision', String(revision));
    this.sql.setMeta.run('hlc', this.clock.peek());
  }

  private readRow(key: ErrorObjectRef): VersionedRow | undefined {
    return this.sql.get.get(key.kind, key.namespace, key.name) as VersionedRow | undefined;
  }

  /** The key of a replicated row, after checking the row agrees with its object and its
   *  timestamps parse and name their writers. */
  private checkReplicated(row: ReplicatedRow): ErrorObjectRef {
    const where = `replicated row ${row.kind} ${row.namespace ? `${row.namespace}/` : ''}${row.name}`;
    const key = this.keyOf(row.object);
    if (key.kind !== row.kind || key.namespace !== row.namespace || key.name !== row.name) {
      throw new BadRequestError(
        `${where}: carries ${key.kind} ${key.namespace}/${key.name}; the sending host is faulty`,
      );
    }
    const checkVersion = (hlc: string, writer: string, part: string): void => {
      let parsed: string;
      try {
        parsed = parseHlc(hlc).writer;
      } catch (err) {
        throw new BadRequestError(`${where}: ${part} version: ${(err as Error).message}`);
      }
      if (parsed !== writer) {
        throw new BadRequestError(`${where}: ${part} version ${hlc} names writer ${JSON.stringify(writer)}`);
      }
    };
    checkVersion(row.hlc, row.writer, 'main');
    if (row.statusHlc !== '' || row.statusWriter !== '')
      checkVersion(row.statusHlc, row.statusWriter, 'status');
    return key;
  }

  private meta(key: string): string | undefined {
    return (this.sql.getMeta.get(key) as { value: string } | undefined)?.value;
  }

  private namespaceOf(kind: string, namespace: string | undefined): string {
    return this.namespaced(kind) ? namespace || 'default' : '';
  }

  /** The key of an object a client sent, after checking it names one. */
  private keyOf(obj: XObject): ErrorObjectRef {
    if (obj === null || typeof obj !== 'object' || typeof obj.kind !== 'string' || obj.kind === '') {
      throw new BadRequestError('the object has no kind: set "kind" (and "apiVersion")');
    }
    const name = obj.metadata?.name;
    if (typeof name !== 'string' || !isDns1123Subdomain(name)) {
      throw new BadRequestError(
        `${obj.kind} metadata.name ${JSON.stringify(name)} is not valid: expected at most 253 lower-case ` +
          "letters, digits, '-' and '.', starting and ending with a letter or digit",
      );
    }
    const namespace = this.namespaceOf(obj.kind, obj.metadata.namespace);
    if (namespace && !isDns1123Label(namespace)) {
      throw new BadRequestError(
        `${obj.kind} "${name}" metadata.namespace ${JSON.stringify(namespace)} is not valid: expected at most 63 ` +
          "lower-case letters, digits and '-', starting and ending with a letter or digit",
      );
    }
    return { kind: obj.kind, namespace, name };
  }
}

function toReplicatedRow(key: ErrorObjectRef, r: VersionedRow): Omit<ReplicatedRow, 'object'> {
  const base = parseBase(r.status_base);
  return {
    kind: key.kind,
    namespace: key.namespace,
    name: key.name,
    deleted: r.deleted === 1,
    hlc: r.hlc,
    writer: r.writer,
    statusHlc: r.status_hlc,
    statusWriter: r.status_writer,
    proof: r.proof,
    statusProof: r.status_proof,
    ...(base ? { statusBase: base } : {}),
  };
}

/** What a dry run returns: the object as it would be stored, with the revision it has now. */
function dryRunResult<T extends XObject>(plan: Exclude<Plan, { op: 'none' }>): T {
  const obj: T = JSON.parse(JSON.stringify(plan.object));
  const rv = plan.previous?.metadata.resourceVersion;
  if (rv) obj.metadata.resourceVersion = rv;
  else delete obj.metadata.resourceVersion;
  return obj;
}

/** RFC 3339 at second precision, as Kubernetes writes timestamps. */
function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: 1, rv: t.rv, ns: t.ns, n: t.name })).toString('base64url');
}

function decodeContinue(s: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    if (t.v === 1 && Number.isInteger(t.rv) && typeof t.ns === 'string' && typeof t.n === 'string') {
      return { rv: t.rv, ns: t.ns, name: t.n };
    }
  } catch {
    // fall through to the error below
  }
  throw new BadRequestError(
    `invalid continue token "${s}": pass the "continue" value of the previous page unchanged, or list again without it`,
  );
}

/** The one object size limit (limits.ts), on what would be stored. */
function checkSize(key: ErrorObjectRef, body: string): void {
  // Each UTF-16 unit is at most 3 bytes of UTF-8: short bodies need no counting.
  if (body.length * 3 <= MAX_OBJECT_BYTES) return;
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > MAX_OBJECT_BYTES) throw new ObjectTooLargeError(key, bytes, MAX_OBJECT_BYTES);
}
