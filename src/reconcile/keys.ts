// Work-queue keys: `namespace/name` for namespaced objects and `name` for cluster-scoped ones, as
// client-go's MetaNamespaceKeyFunc makes them, and back to a store ObjectKey for a given kind.

import type { XObject } from '../model/object.ts';
import type { ObjectKey } from '../store/store.ts';

export function keyOf(obj: Pick<XObject, 'metadata'>): string {
  const ns = obj.metadata.namespace ?? '';
  return ns ? `${ns}/${obj.metadata.name}` : obj.metadata.name;
}

export function objectKey<K extends string>(kind: K, key: string): ObjectKey<K> {
  const i = key.indexOf('/');
  return i < 0
    ? { kind, namespace: '', name: key }
    : { kind, namespace: key.slice(0, i), name: key.slice(i + 1) };
}
