// The desired-state store embedded in every host: objects as JSON rows in SQLite (node:sqlite,
// no native addon), one durable transaction per write (WAL, synchronous=FULL), so a write that
// returned survives kill -9 and power loss. Implements the Store contract (store.ts): Kubernetes
// semantics for resourceVersion, generation, status subresource, finalizers, selectors and watch.
//
// Ready for replication between hosts: each row keeps the hybrid-logical-clock timestamp and the
// writer of its last version, deletions stay as tombstone rows (invisible to get/list) until
// purged, and changesSince() walks rows in revision order. One process per database file: the
// revision counter and watch history live in this process.

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
} from './errors.ts';
import { HybridLogicalClock, hlcLowerBound } from './hlc.ts';
import { jsonEqual } from './json-value.ts';
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
import { type Logger, WatchHub } from './watch-hub.ts';

const SCHEMA_VERSION = 1;
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
  PRIMARY KEY (kind, namespace, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_by_revision ON objects (revision);
CREATE INDEX IF NOT EXISTS tombstones_by_hlc ON objects (hlc) WHERE deleted = 1;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
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
  /** Wall clock in ms for the hybrid logical clock (tests). Default Date.now. */
  wallClock?: () => number;
}

/** One row as replication sees it: the latest version of an object, or its tombstone. */
export interface ChangeRecord {
  kind: string;
  namespace: string;
  name: string;
  /** This host's revision of the change. */
  revision: number;
  deleted: boolean;
  hlc: string;
  writer: string;
  /** The object (for a tombstone: its last state), with metadata.resourceVersion = revision. */
  object: XObject;
}

interface Row {
  revision: number;
  deleted: number;
  body: string;
}

interface ChangeRow extends Row {
  kind: string;
  namespace: string;
  name: string;
  hlc: string;
  writer: string;
}

interface ListRow extends Row {
  namespace: string;
  name: string;
}

/** What a write decided to do, computed from the object currently stored. */
type Plan =
  | { op: 'none'; result: XObject }
  | { op: 'put'; type: 'ADDED' | 'MODIFIED'; object: XObject; previous?: XObject }
  | { op: 'delete'; object: XObject; previous: XObject };

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
  };

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
      this.db.exec(`BEGIN IMMEDIATE; ${SCHEMA} PRAGMA user_version = ${SCHEMA_VERSION}; COMMIT`);
      this.sql = {
        get: this.db.prepare(
          'SELECT revision, deleted, body FROM objects WHERE kind = ? AND namespace = ? AND name = ?',
        ),
        upsert: this.db.prepare(
          `INSERT INTO objects (kind, namespace, name, revision, deleted, hlc, writer, body)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (kind, namespace, name) DO UPDATE SET revision = excluded.revision,
             deleted = excluded.deleted, hlc = excluded.hlc, writer = excluded.writer, body = excluded.body`,
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
          `SELECT kind, namespace, name, revision, deleted, hlc, writer, body FROM objects
           WHERE revision > ? ORDER BY revision LIMIT ?`,
        ),
        purge: this.db.prepare('DELETE FROM objects WHERE deleted = 1 AND hlc < ?'),
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
  }

  get(key: ObjectKey): XObject | undefined {
    const ns = this.namespaceOf(key.kind, key.namespace);
    const row = this.sql.get.get(key.kind, ns, key.name) as Row | undefined;
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
      return { op: 'put', type: 'ADDED', object: { ...obj, metadata, status: undefined } };
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
          return { op: 'delete', object: next, previous: existing };
        }
      }
      if (jsonEqual(next, old)) return { op: 'none', result: existing };
      return { op: 'put', type: 'MODIFIED', object: next, previous: existing };
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
      if (!old.metadata.finalizers?.length) return { op: 'delete', object: old, previous: existing };
      if (old.metadata.deletionTimestamp) return { op: 'none', result: existing };
      const metadata: ObjectMeta = {
        ...old.metadata,
        deletionTimestamp: timestamp(),
        generation: (old.metadata.generation ?? 1) + 1,
      };
      return { op: 'put', type: 'MODIFIED', object: { ...old, metadata }, previous: existing };
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
        yield {
          kind: r.kind,
          namespace: r.namespace,
          name: r.name,
          revision: r.revision,
          deleted: r.deleted === 1,
          hlc: r.hlc,
          writer: r.writer,
          object: toObject(r.body, r.revision),
        };
        after = r.revision;
      }
      if (rows.length < batchSize) return;
    }
  }

  /** Removes tombstones whose deletion is older than `olderThanMs` (by its clock timestamp);
   *  returns how many. Keep them longer than any partition replication promises to heal. */
  purgeTombstones(olderThanMs: number, now: number = Date.now()): number {
    const result = this.sql.purge.run(hlcLowerBound(now - olderThanMs));
    return Number(result.changes);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.hub.clear();
    this.db.close();
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
      return dryRunResult(plan);
    }
    this.db.exec('BEGIN IMMEDIATE');
    let plan: Plan;
    let revision: number;
    try {
      plan = decide(this.get(key));
      if (plan.op === 'none') {
        this.db.exec('ROLLBACK');
        return plan.result;
      }
      revision = Number(this.meta('revision') ?? '0') + 1;
      const hlc = this.clock.now();
      const body = JSON.stringify(withoutRevision(plan.object));
      const deleted = plan.op === 'delete' ? 1 : 0;
      this.sql.upsert.run(key.kind, key.namespace, key.name, revision, deleted, hlc, this.writer, body);
      this.sql.setMeta.run('revision', String(revision));
      this.sql.setMeta.run('hlc', hlc);
      this.db.exec('COMMIT');
      this.rev = revision;
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
    // The event's object is frozen for watchers; the caller gets its own copy.
    return structuredClone(plan.object);
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

function toObject(body: string, revision: number): XObject {
  const obj = JSON.parse(body) as XObject;
  obj.metadata.resourceVersion = String(revision);
  return obj;
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
