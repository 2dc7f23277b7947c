// A store that counts the status writes made through it (the status subresource), for tests that hold a
// controller to one status write per reconcile. Everything else goes to the real store unchanged.

import type { Store } from '../src/store/store.ts';

export interface CountedStore {
  store: Store;
  /** Status writes so far, per object (`Kind namespace/name`). */
  writes: Map<string, number>;
  /** All status writes so far. */
  total(): number;
}

export function countStatusWrites(real: Store): CountedStore {
  const writes = new Map<string, number>();
  const store = new Proxy(real, {
    get(target, prop) {
      if (prop === 'update') {
        return (obj: Parameters<Store['update']>[0], opts?: Parameters<Store['update']>[1]) => {
          const result = target.update(obj, opts);
          if (opts?.subresource === 'status') {
            const id = `${obj.kind} ${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
            writes.set(id, (writes.get(id) ?? 0) + 1);
          }
          return result;
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { store, writes, total: () => [...writes.values()].reduce((a, b) => a + b, 0) };
}
