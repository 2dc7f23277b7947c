// Writing an object's status through the store's status subresource: re-read the object, let the
// caller change a copy of its status, and write only if something changed. The write goes through the
// store's group commit, so the status writes of many reconciles (and the API's writes) arriving together
// share one transaction and one fsync; the promise settles once it is durable. Each status has exactly
// one writer (the controller of that kind on the host that owns the object), so the write does not
// carry a resourceVersion precondition; the status subresource never touches spec or metadata.

import { isDeepStrictEqual } from 'node:util';
import type { ObjectOf } from '../model/kinds.ts';
import type { ObjectKey, Store } from '../store/store.ts';

/** The status type of kind `K`'s objects (`HostStatus` for `'Host'`). */
export type StatusOf<K extends string> = NonNullable<ObjectOf<K>['status']>;

/**
 * Apply `mutate` to a copy of the current status of `key` and store it if it changed (re-read and
 * compared inside the commit, so it sees every write before it). Resolves with the stored object (or
 * the unchanged one); undefined when the object does not exist.
 */
export function updateStatus<K extends string>(
  store: Store,
  key: ObjectKey<K>,
  mutate: (status: StatusOf<K>, obj: ObjectOf<K>) => void,
): Promise<ObjectOf<K> | undefined> {
  return store.groupCommit(() => writeStatus(store, key, mutate));
}

function writeStatus<K extends string>(
  store: Store,
  key: ObjectKey<K>,
  mutate: (status: StatusOf<K>, obj: ObjectOf<K>) => void,
): ObjectOf<K> | undefined {
  const obj = store.get(key);
  if (!obj) return undefined;
  // An object without a status yet starts from an empty one (every field of a status is optional).
  const before = (obj.status ?? {}) as StatusOf<K>;
  const status = structuredClone(before);
  mutate(status, obj);
  if (isDeepStrictEqual(status, before)) return obj;
  const { resourceVersion: _, ...metadata } = obj.metadata;
  return store.update({ ...obj, metadata, status }, { subresource: 'status' });
}
