// Writing an object's status through the store's status subresource: re-read the object, let the
// caller change a copy of its status, and write only if something changed. Each status has exactly
// one writer (the controller of that kind on the host that owns the object), so the write does not
// carry a resourceVersion precondition; the status subresource never touches spec or metadata.

import type { BaseStatus, XObject } from '../model/object.ts';
import type { ObjectKey, Store } from '../store/store.ts';

/**
 * Apply `mutate` to a copy of the current status of `key` and store it if it changed.
 * Returns the stored object (or the unchanged one); undefined when the object does not exist.
 */
export function updateStatus<S extends BaseStatus>(
  store: Store,
  key: ObjectKey,
  mutate: (status: S, obj: XObject) => void,
): XObject | undefined {
  const obj = store.get(key);
  if (!obj) return undefined;
  const before = (obj.status ?? {}) as S;
  const status = structuredClone(before);
  mutate(status, obj);
  if (JSON.stringify(status) === JSON.stringify(before)) return obj;
  const next: XObject = { ...obj, metadata: { ...obj.metadata }, status };
  delete next.metadata.resourceVersion;
  return store.update(next, { subresource: 'status' });
}
