// The desired-state store's contract: what the API, the controllers and (later) replication
// between hosts rely on. The embedded implementation is SQLite (see sqlite-store.ts); anything
// else that claims to be a Store must pass test/store/store-contract.ts.

import type { XObject } from '../api/types.ts';

/** Identifies one object. `namespace` is '' for cluster-scoped kinds (Host). */
export interface ObjectKey {
  kind: string;
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

export interface ListResult {
  items: XObject[];
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

export interface WatchEvent {
  type: WatchEventType;
  object: XObject;
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
  get(key: ObjectKey): XObject | undefined;
  list(kind: string, opts?: ListOptions): ListResult;
  /** Assigns uid, creationTimestamp, generation 1 and a resourceVersion. AlreadyExistsError if present.
   *  `.status` is not taken (status subresource, as Kubernetes): write it with update(…, { subresource: 'status' }). */
  create(obj: XObject, opts?: WriteOptions): XObject;
  /** ConflictError if `metadata.resourceVersion` is set and not current; NotFoundError if absent.
   *  An update that changes nothing returns the stored object: no new revision, no event. */
  update(obj: XObject, opts?: UpdateOptions): XObject;
  /** With finalizers: sets deletionTimestamp (and bumps generation) and returns the object; the
   *  object goes when an update empties its finalizers. Without: removes it and returns it. */
  delete(key: ObjectKey, opts?: DeleteOptions): XObject;
  /** Calls `onEvent` for each matching change until the returned function is called. Replayed
   *  events (resourceVersion given) are delivered before watch() returns; live ones synchronously,
   *  in revision order, as each write commits. A listener that throws is logged and removed. */
  watch(kind: string, opts: WatchOptions, onEvent: (ev: WatchEvent) => void): () => void;
  /** The latest revision, as a resourceVersion string. */
  revision(): string;
  close(): void;
}
