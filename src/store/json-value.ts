// Deep equality and deep freezing of JSON values (parsed objects: no cycles, no Dates, no Maps).
// The store compares specs to decide whether `generation` moves, and freezes the objects it hands
// to watchers so that one listener cannot change what the next one sees.

import { isDeepStrictEqual } from 'node:util';

/** Equal as JSON: Node's deep strict equality on the values as JSON would carry them (a key whose
 *  value is undefined does not survive JSON, so it does not count). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return a === b || isDeepStrictEqual(withoutUndefined(a), withoutUndefined(b));
}

function withoutUndefined(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutUndefined);
  if (v === null || typeof v !== 'object') return v;
  // No prototype: a key such as `__proto__` stays data (both sides are copied alike).
  const out: Record<string, unknown> = Object.create(null);
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = withoutUndefined(x);
  return out;
}

export function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}
