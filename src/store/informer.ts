// An informer, as client-go has them: an in-memory copy of every object of one kind, filled by one list
// and then kept current by the store's watch (events, never another list), so readers that look at every
// object on each decision (placement, controllers) read memory instead of SQLite. Handlers learn each
// change with the object before it, so they can keep their own indexes incrementally. start() after a
// stop() (a watch restart) lists again and reports the difference as events, so nothing is missed.

import type { ObjectOf } from '../model/kinds.ts';
import type { XObject } from '../model/object.ts';
import type { Store, WatchEvent } from './store.ts';

/** One change as an informer reports it: the object after (absent for a deletion) and before (absent
 *  for an addition). */
export interface InformerChange<T extends XObject> {
  type: WatchEvent['type'];
  object: T;
  previous?: T;
}

export interface InformerComponents {
  store: Store;
}

export interface InformerInit<K extends string> {
  kind: K;
  /** Only this namespace; all when omitted. */
  namespace?: string;
}

/** `namespace/name`, or `name` for cluster-scoped objects: the cache's key. */
export function cacheKey(obj: Pick<XObject, 'metadata'>): string {
  const ns = obj.metadata.namespace ?? '';
  return ns ? `${ns}/${obj.metadata.name}` : obj.metadata.name;
}

export class Informer<K extends string> {
  readonly kind: K;
  readonly #store: Store;
  readonly #namespace: string | undefined;
  readonly #objects = new Map<string, ObjectOf<K>>();
  readonly #handlers = new Set<(change: InformerChange<ObjectOf<K>>) => void>();
  #unwatch: (() => void) | undefined;

  constructor(components: InformerComponents, init: InformerInit<K>) {
    this.#store = components.store;
    this.kind = init.kind;
    this.#namespace = init.namespace;
  }

  get running(): boolean {
    return this.#unwatch !== undefined;
  }

  /** Lists once and watches from the list's revision. After a stop(), what changed meanwhile reaches the
   *  handlers as ADDED / MODIFIED / DELETED, as if the watch had never stopped. */
  start(): void {
    if (this.#unwatch) return;
    const listed = this.#store.list(this.kind, { namespace: this.#namespace });
    const seen = new Set<string>();
    for (const obj of listed.items) {
      const key = cacheKey(obj);
      seen.add(key);
      const before = this.#objects.get(key);
      if (before?.metadata.resourceVersion === obj.metadata.resourceVersion) continue;
      this.#apply({ type: before ? 'MODIFIED' : 'ADDED', object: obj, previous: before });
    }
    for (const [key, before] of [...this.#objects]) {
      if (!seen.has(key)) this.#apply({ type: 'DELETED', object: before, previous: before });
    }
    this.#unwatch = this.#store.watch(
      this.kind,
      { namespace: this.#namespace, resourceVersion: listed.resourceVersion },
      (ev) =>
        this.#apply({ type: ev.type, object: ev.object, previous: this.#objects.get(cacheKey(ev.object)) }),
    );
  }

  /** Stops watching; the cache keeps what it had (start() brings it up to date again). */
  stop(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  /** The cached object (shared and frozen when it came from a watch event: do not modify it). */
  get(key: string): ObjectOf<K> | undefined {
    return this.#objects.get(key);
  }

  /** Every cached object, in no particular order. */
  values(): IterableIterator<ObjectOf<K>> {
    return this.#objects.values();
  }

  get size(): number {
    return this.#objects.size;
  }

  /** Calls `handler` after each change is in the cache (also for what start() finds). */
  onChange(handler: (change: InformerChange<ObjectOf<K>>) => void): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  #apply(change: InformerChange<ObjectOf<K>>): void {
    const key = cacheKey(change.object);
    if (change.type === 'DELETED') this.#objects.delete(key);
    else this.#objects.set(key, change.object);
    for (const handler of this.#handlers) handler(change);
  }
}
