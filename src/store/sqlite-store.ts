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

import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { ObjectMeta, XObject } from '../api/types.ts';
import {
  AlreadyExistsError,
  BadRequestError,
  ConflictError,
  type ErrorObjectRef,
  NotFoundError,
  ObjectTooLargeError,
} from './errors.ts';
import { HybridLogicalClock, hlcLowerBound, parseHlc } from './hlc.ts';
import { jsonEqual } from './json-value.ts';
import { MAX_OBJECT_BYTES } from './limits.ts';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.ts';
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
import { type ChangeEvent, type Logger, WatchHub } from './watch-hub.ts';

/** 1: one version per row. 2: adds the status part's version (status_hlc, status_writer). */
const SCHEMA_VERSION = 2;
const CHANGES_BATCH = 500;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS objects (
  kind      TEXT NOT NULL,
  namespace TEXT NOT NULL,
  name      TEXT NOT NULL,
  revision  INTEGER NOT NULL,
  deleted   INTEGER NOT NULL DEFAULT 0,
  hlc       TEXT NOT NULL,
  writer    TEXT NOT NULL,
  body      TEXT NOT NULL,
  status_hlc    TEXT NOT NULL DEFAULT '',
  status_writer TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (kind, namespace, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_by_revision ON objects (revision);
CREATE INDEX IF NOT EXISTS tombstones_by_hlc ON objects (hlc) WHERE deleted = 1;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

/** Version 1 → 2: the status part gets its own version, initially the row's (its last write). */
const MIGRATE_1_TO_2 = `
ALTER TABLE objects ADD COLUMN status_hlc TEXT NOT NULL DEFAULT '';
ALTER TABLE objects ADD COLUMN status_writer TEXT NOT NULL DEFAULT '';
UPDATE objects SET status_hlc = hlc, status_writer = writer;
`;

const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

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
  log?: Logger;
  /** Wall clock in ms for the hybrid logical clock and expiry (tests). Default Date.now. */
  wallClock?: () => number;
  /** Kinds whose objects expire (e.g. Event → 1 h): see expireObjects(). */
  ttlMs?: Readonly<Record<string, number>>;
  /** How often expired objects are removed. Default: a quarter of the shortest TTL, at most a minute. */
  expirySweepMs?: number;
}

/** One row as replication ships it: the latest version of an object, or its tombstone, with the
 *  version of each of its two parts. */
export interface ReplicatedRow {
  kind: string;
  /** '' for cluster-scoped kinds. */
  namespace: string;
  name: string;
  /** The main part is a deletion: the row is a tombstone. */
  deleted: boolean;
  /** Version of the main part (metadata + spec, and deletion): hybrid-logical-clock timestamp… */
  hlc: string;
  /** …and the host that wrote it. */
  writer: string;
  /** Version of the status part; create writes it too, so it is '' only for rows of schema 1. */
  statusHlc: string;
  statusWriter: string;
  /** The object without resourceVersion (a per-host counter). For a tombstone: its last state. */
  object: XObject;
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

/** What applyReplicated() did with a row. */
export interface ApplyResult {
  /** Some part of the received row was newer than ours and is now stored. */
  changed: boolean;
  /** Some part of ours is newer than the received row's: the sender is behind on this object. */
  localNewer: boolean;
  /** The watch event it caused, if any (a tombstone for an object never seen causes none). */
  event?: 'ADDED' | 'MODIFIED' | 'DELETED';
}

/** What applyReplicatedBatch() did with one row: its result, or why it was not applied. */
export type ApplyOutcome = { ok: true; result: ApplyResult } | { ok: false; error: Error };

interface Row {
  revision: number;
  deleted: number;
  body: string;
}

interface VersionedRow extends Row {
  hlc: string;
  writer: string;
  status_hlc: string;
  status_writer: string;
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
  private readonly log: Logger;
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
  };
  /** Moves on every row write (local, replicated or purge): tells a digest cache it is stale. */
  private stamp = 0;
  private readonly localWriteListeners = new Set<(key: ObjectKey) => void>();
  private readonly ttl: ReadonlyMap<string, number>;
  private readonly wallClock: () => number;
  private expiryTimer?: NodeJS.Timeout;

  constructor(init: OpenStoreInit) {
    this.path = init.path;
    this.namespaced = init.namespaced;
    this.log = init.log ?? ((message, err) => console.error(`xenos store: ${message}`, err ?? ''));
    if (init.path !== ':memory:') mkdirSync(dirname(init.path), { recursive: true });
    this.db = new DatabaseSync(init.path);
    try {
      this.db.exec('PRAGMA journal_mode = WAL');
      this.db.exec('PRAGMA synchronous = FULL');
      this.db.exec('PRAGMA busy_timeout = 5000');
      const version = (this.db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
      if (version > SCHEMA_VERSION) {
        throw new Error(
          `store ${init.path} has schema version ${version}, newer than this xenos understands ` +
            `(${SCHEMA_VERSION}); run a newer xenosd or point it at another data directory`,
        );
      }
      const migrate = version === 1 ? MIGRATE_1_TO_2 : SCHEMA;
      this.db.exec(`BEGIN IMMEDIATE; ${migrate} PRAGMA user_version = ${SCHEMA_VERSION}; COMMIT`);
      this.sql = {
        get: this.db.prepare(
          `SELECT revision, deleted, body, hlc, writer, status_hlc, status_writer FROM objects
           WHERE kind = ? AND namespace = ? AND name = ?`,
        ),
        upsert: this.db.prepare(
          `INSERT INTO objects (kind, namespace, name, revision, deleted, hlc, writer, status_hlc, status_writer, body)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (kind, namespace, name) DO UPDATE SET revision = excluded.revision,
             deleted = excluded.deleted, hlc = excluded.hlc, writer = excluded.writer,
             status_hlc = excluded.status_hlc, status_writer = excluded.status_writer, body = excluded.body`,
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
          `SELECT kind, namespace, name, revision, deleted, hlc, writer, status_hlc, status_writer, body
           FROM objects WHERE revision > ? ORDER BY revision LIMIT ?`,
        ),
        purge: this.db.prepare('DELETE FROM objects WHERE deleted = 1 AND hlc < ?'),
        versions: this.db.prepare(
          'SELECT kind, namespace, name, deleted, hlc, status_hlc FROM objects ORDER BY kind, namespace, name',
        ),
        expire: this.db.prepare(
          'DELETE FROM objects WHERE kind = ? AND hlc < ? RETURNING namespace, name, revision, deleted, body',
        ),
      };
      this.rev = Number(this.meta('revision') ?? '0');
      let writer = init.writer ?? this.meta('writer');
      if (!writer) {
        writer = randomUUID();
        this.sql.setMeta.run('writer', writer);
      }
      this.writer = writer;
      this.clock = new HybridLogicalClock({ writer, wallClock: init.wallClock, last: this.meta('hlc') });
    } catch (err) {
      this.db.close();
      throw err;
    }
    this.hub = new WatchHub({ historySize: init.historySize, startRevision: this.rev, log: this.log });
    this.ttl = new Map(Object.entries(init.ttlMs ?? {}));
    this.wallClock = init.wallClock ?? Date.now;
    if (this.ttl.size > 0) {
      this.expireObjects();
      const every = init.expirySweepMs ?? Math.min(60_000, Math.max(50, Math.min(...this.ttl.values()) / 4));
      this.expiryTimer = setInterval(() => {
        try {
          this.expireObjects();
        } catch (err) {
          this.log('removing expired objects failed; trying again at the next sweep', err);
        }
      }, every);
      this.expiryTimer.unref();
    }
  }

  get(key: ObjectKey): XObject | undefined {
    const ns = this.namespaceOf(key.kind, key.namespace);
    const row = this.readRow({ kind: key.kind, namespace: ns, name: key.name });
    return row && !row.deleted ? toObject(row.body, row.revision) : undefined;
  }

  list(kind: string, opts: ListOptions = {}): ListResult {
    const labels = parseLabelSelector(opts.labelSelector ?? '');
    const fields = parseFieldSelector(opts.fieldSelector ?? '');
    const limit = opts.limit ?? 0;
    if (!Number.isInteger(limit) || limit < 0) {
      throw new BadRequestError(`limit must be a non-negative integer, got ${opts.limit}`);
    }
    const token = opts.continue ? decodeContinue(opts.continue) : undefined;
    const ns = this.namespaced(kind) && opts.namespace ? opts.namespace : undefined;
    const rows = (ns === undefined
      ? this.sql.listAll.iterate(kind, token?.ns ?? '', token?.name ?? '')
      : this.sql.listNs.iterate(
          kind,
          ns,
          token?.ns === ns ? token.name : '',
        )) as unknown as Iterable<ListRow>;
    const items: XObject[] = [];
    let more = false;
    for (const row of rows) {
      const obj = toObject(row.body, row.revision);
      if (!matchesFields(fields, obj) || !matchesLabels(labels, obj.metadata.labels)) continue;
      if (limit > 0 && items.length === limit) {
        more = true;
        break;
      }
      items.push(obj);
    }
    // Every page reports the first page's revision: a watch from it misses nothing any page missed.
    const rv = token?.rv ?? this.rev;
    const result: ListResult = { items, resourceVersion: String(rv) };
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

  create(obj: XObject, opts: WriteOptions = {}): XObject {
    const key = this.keyOf(obj);
    return this.mutate(key, opts.dryRun, (existing) => {
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

  update(obj: XObject, opts: UpdateOptions = {}): XObject {
    const key = this.keyOf(obj);
    return this.mutate(key, opts.dryRun, (existing) => {
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

  delete(key: ObjectKey, opts: DeleteOptions = {}): XObject {
    const ref = { kind: key.kind, namespace: this.namespaceOf(key.kind, key.namespace), name: key.name };
    return this.mutate(ref, opts.dryRun, (existing) => {
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

  watch(kind: string, opts: WatchOptions, onEvent: (ev: WatchEvent) => void): () => void {
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
      const rows = this.sql.changes.all(after, batchSize) as unknown as ChangeRow[];
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
        for (const r of this.sql.expire.all(kind, hlcLowerBound(now - ttl)) as unknown as Expired[]) {
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
    };
    for (const r of this.sql.versions.iterate() as unknown as Iterable<VersionRow>) {
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
   * Throws BadRequestError for a row that does not describe itself consistently and
   * ClockDriftError for a timestamp too far ahead of this host's clock; nothing is stored then.
   */
  applyReplicated(row: ReplicatedRow): ApplyResult {
    const [outcome] = this.applyReplicatedBatch([row]);
    if (!outcome.ok) throw outcome.error;
    return outcome.result;
  }

  /**
   * Merges rows received together (one push or exchange) in ONE transaction, so the batch costs one
   * fsync instead of one per row. Each row is merged exactly as applyReplicated() does, inside its
   * own savepoint: a row that fails (BadRequestError, ClockDriftError, …) is rolled back alone and
   * reported in its outcome, and the others still apply. Each changed row gets its own local
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
          const merged = this.mergeReplicated(row, rev + 1);
          this.db.exec('RELEASE replicated_row');
          if (merged.revision !== undefined) {
            wrote = true;
            rev = Math.max(rev, merged.revision);
          }
          if (merged.event) events.push(merged.event);
          outcomes.push({ ok: true, result: merged.result });
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

  /** Inside a transaction: merges one received row (see applyReplicated), storing a change under
   *  `nextRevision`. Returns the revision written (none if nothing was) and the event to publish
   *  once the transaction commits. */
  private mergeReplicated(
    row: ReplicatedRow,
    nextRevision: number,
  ): { result: ApplyResult; revision?: number; event?: ChangeEvent } {
    const key = this.checkReplicated(row);
    const local = this.readRow(key);
    // Expired here already (see expireObjects): taking it would resurrect it.
    if (this.expired(row.kind, row.hlc))
      return { result: { changed: false, localNewer: !!local && local.hlc > row.hlc } };
    const mainNewer = !local || row.hlc > local.hlc;
    const statusNewer = !local || row.statusHlc > local.status_hlc;
    const localNewer = local !== undefined && (local.hlc > row.hlc || local.status_hlc > row.statusHlc);
    if (!mainNewer && !statusNewer) return { result: { changed: false, localNewer } };
    if (mainNewer) this.clock.receive(row.hlc);
    if (statusNewer && row.statusHlc) this.clock.receive(row.statusHlc);
    const incoming = withoutRevision(row.object);
    const stored = local && (JSON.parse(local.body) as XObject);
    const { status: _, ...main } = mainNewer || !stored ? incoming : stored;
    const status = (statusNewer || !stored ? incoming : stored).status;
    const merged: XObject = status === undefined ? main : { ...main, status };
    const deleted = mainNewer || !local ? row.deleted : local.deleted === 1;
    const body = JSON.stringify(merged);
    const mainVersion =
      mainNewer || !local ? { hlc: row.hlc, writer: row.writer } : { hlc: local.hlc, writer: local.writer };
    const statusVersion =
      statusNewer || !local
        ? { hlc: row.statusHlc, writer: row.statusWriter }
        : { hlc: local.status_hlc, writer: local.status_writer };
    const sameContent = local !== undefined && local.deleted === Number(deleted) && local.body === body;
    // Only the versions moved (the same change arrived from another path): keep the revision.
    const revision = sameContent ? local.revision : nextRevision;
    this.writeRow(key, revision, deleted, mainVersion, statusVersion, body);
    if (sameContent) return { result: { changed: true, localNewer }, revision };
    const wasLive = local !== undefined && local.deleted === 0;
    const type = wasLive ? (deleted ? 'DELETED' : 'MODIFIED') : deleted ? undefined : 'ADDED';
    const result: ApplyResult = { changed: true, localNewer, event: type };
    if (!type) return { result, revision };
    const event: ChangeEvent = {
      revision,
      type,
      kind: key.kind,
      object: toObject(body, revision),
      previous: wasLive ? toObject(local.body, local.revision) : undefined,
    };
    return { result, revision, event };
  }

  /** Reads the stored object (or absence), decides, and writes the outcome in one transaction. */
  private mutate(
    key: ErrorObjectRef,
    dryRun: boolean | undefined,
    decide: (existing?: XObject) => Plan,
  ): XObject {
    if (dryRun) {
      const plan = decide(this.get(key));
      if (plan.op === 'none') return plan.result;
      if (plan.op === 'put') checkSize(key, JSON.stringify(withoutRevision(plan.object)));
      return dryRunResult(plan);
    }
    this.db.exec('BEGIN IMMEDIATE');
    let plan: Plan;
    let revision: number;
    try {
      const row = this.readRow(key);
      plan = decide(row && !row.deleted ? toObject(row.body, row.revision) : undefined);
      if (plan.op === 'none') {
        this.db.exec('ROLLBACK');
        return plan.result;
      }
      revision = this.rev + 1;
      const now = { hlc: this.clock.now(), writer: this.writer };
      const keepMain = plan.part === 'status' && row;
      const keepStatus = plan.part === 'main' && row;
      const body = JSON.stringify(withoutRevision(plan.object));
      if (plan.op === 'put') checkSize(key, body);
      this.writeRow(
        key,
        revision,
        plan.op === 'delete',
        keepMain ? { hlc: keepMain.hlc, writer: keepMain.writer } : now,
        keepStatus ? { hlc: keepStatus.status_hlc, writer: keepStatus.status_writer } : now,
        body,
      );
      this.db.exec('COMMIT');
      this.rev = revision;
      this.stamp++;
      plan = { ...plan, object: toObject(body, revision) };
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
        this.log(`local-write listener threw on ${key.kind} ${key.namespace}/${key.name}`, err);
      }
    }
    // The event's object is frozen for watchers; the caller gets its own copy.
    return structuredClone(plan.object);
  }

  /** Inside a transaction: stores one row and the revision and clock it moved to. */
  private writeRow(
    key: ErrorObjectRef,
    revision: number,
    deleted: boolean,
    main: { hlc: string; writer: string },
    status: { hlc: string; writer: string },
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
    if (typeof name !== 'string' || name.length > 253 || !DNS_SUBDOMAIN_RE.test(name)) {
      throw new BadRequestError(
        `${obj.kind} metadata.name ${JSON.stringify(name)} is not valid: expected at most 253 lower-case ` +
          "letters, digits, '-' and '.', starting and ending with a letter or digit",
      );
    }
    const namespace = this.namespaceOf(obj.kind, obj.metadata.namespace);
    if (namespace && (namespace.length > 63 || !DNS_LABEL_RE.test(namespace))) {
      throw new BadRequestError(
        `${obj.kind} "${name}" metadata.namespace ${JSON.stringify(namespace)} is not valid: expected at most 63 ` +
          "lower-case letters, digits and '-', starting and ending with a letter or digit",
      );
    }
    return { kind: obj.kind, namespace, name };
  }
}

/** The one object size limit (limits.ts), on what would be stored. */
function checkSize(key: ErrorObjectRef, body: string): void {
  // Each UTF-16 unit is at most 3 bytes of UTF-8: short bodies need no counting.
  if (body.length * 3 <= MAX_OBJECT_BYTES) return;
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > MAX_OBJECT_BYTES) throw new ObjectTooLargeError(key, bytes, MAX_OBJECT_BYTES);
}

function toObject(body: string, revision: number): XObject {
  const obj = JSON.parse(body) as XObject;
  obj.metadata.resourceVersion = String(revision);
  return obj;
}

function toReplicatedRow(key: ErrorObjectRef, r: VersionedRow): Omit<ReplicatedRow, 'object'> {
  return {
    kind: key.kind,
    namespace: key.namespace,
    name: key.name,
    deleted: r.deleted === 1,
    hlc: r.hlc,
    writer: r.writer,
    statusHlc: r.status_hlc,
    statusWriter: r.status_writer,
  };
}

function withoutRevision(obj: XObject): XObject {
  const { resourceVersion: _, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

/** What a dry run returns: the object as it would be stored, with the revision it has now. */
function dryRunResult(plan: Exclude<Plan, { op: 'none' }>): XObject {
  const obj = JSON.parse(JSON.stringify(plan.object)) as XObject;
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
