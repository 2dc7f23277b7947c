// The desired-state store's contract: what the API, the controllers and (later) replication
// between hosts rely on. The embedded implementation is SQLite (see sqlite-store.ts); anything
// else that claims to be a Store must pass test/store/store-contract.ts.

import type { ObjectOf } from '../model/kinds.ts';
import type { XObject } from '../model/object.ts';

/** Identifies one object. `namespace` is '' for cluster-scoped kinds (Host). A literal `kind` (a
 *  constant of src/model/kinds.ts) types what the store returns for it (`ObjectOf<K>`). */
export interface ObjectKey<K extends string = string> {
  kind: K;
  namespace: string;
  name: string;
}

export interface ListOptions {
  /** Omit for all namespaces. */
  namespace?: string;
  /** Kubernetes label selector syntax: `a=b,c!=d,e in (x,y),!f,g`. */
  labelSelector?: string;
  /** Only `metadata.name=` and `metadata.namespace=` (and `!=`), as Kubernetes supports for CRDs. */
  fieldSelector?: string;
  limit?: number;
  continue?: string;
}

export interface ListResult<T extends XObject = XObject> {
  items: T[];
  /** The store revision the list was taken at: watch from here to see every later change. */
  resourceVersion: string;
  continue?: string;
}

export interface WriteOptions {
  /** Validate and compute the result, persist nothing. */
  dryRun?: boolean;
}

export interface UpdateOptions extends WriteOptions {
  /** `status`: only `.status` is taken from the given object; otherwise `.status` is ignored
   *  (the kinds have a status subresource) and `generation` is bumped when `.spec` changed. */
  subresource?: 'status';
}

export interface DeleteOptions extends WriteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchEvent<T extends XObject = XObject> {
  type: WatchEventType;
  object: T;
}

export interface WatchOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Replay every change after this revision, then stream live ones. Omit or '0': live only
   *  (callers that need a starting state list first). Too old a revision → ExpiredError (410). */
  resourceVersion?: string;
}

export interface Store {
  get<K extends string>(key: ObjectKey<K>): ObjectOf<K> | undefined;
  list<K extends string>(kind: K, opts?: ListOptions): ListResult<ObjectOf<K>>;
  /** Assigns uid, creationTimestamp, generation 1 and a resourceVersion. AlreadyExistsError if present.
   *  `.status` is not taken (status subresource, as Kubernetes): write it with update(…, { subresource: 'status' }). */
  create<T extends XObject>(obj: T, opts?: WriteOptions): T;
  /** ConflictError if `metadata.resourceVersion` is set and not current; NotFoundError if absent.
   *  An update that changes nothing returns the stored object: no new revision, no event. */
  update<T extends XObject>(obj: T, opts?: UpdateOptions): T;
  /** With finalizers: sets deletionTimestamp (and bumps generation) and returns the object; the
   *  object goes when an update empties its finalizers. Without: removes it and returns it. */
  delete<K extends string>(key: ObjectKey<K>, opts?: DeleteOptions): ObjectOf<K>;
  /** Calls `onEvent` for each matching change until the returned function is called. Replayed
   *  events (resourceVersion given) are delivered before watch() returns; live ones synchronously,
   *  in revision order, as each write commits. A listener that throws is logged and removed. */
  watch<K extends string>(
    kind: K,
    opts: WatchOptions,
    onEvent: (ev: WatchEvent<ObjectOf<K>>) => void,
  ): () => void;
  /** Group commit: runs `write` (synchronous calls on this store) together with the other writes that
   *  arrive in the same turn of the event loop — one transaction, one fsync, `write` in its own
   *  savepoint — and resolves with its result only once that transaction is durable. A `write` that
   *  throws rejects with its error and rolls back alone; the others still commit. Watch events of the
   *  batch are delivered after the commit, before the promises settle. */
  groupCommit<T>(write: () => T): Promise<T>;
  /** The latest revision, as a resourceVersion string. */
  revision(): string;
  close(): void;
}
