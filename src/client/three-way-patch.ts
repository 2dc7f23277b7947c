// Client-side apply, as kubectl does it: the configuration applied last is kept on the object in
// the annotation `xenos.io/last-applied`; the merge patch sent sets every field of the new
// configuration that differs from the live object, and nulls every field that the last applied
// configuration had and the new one no longer has. Fields others set (status, fields defaulted by
// the server, labels added by hand) are left alone. Only own properties are read and written, so a key
// such as `__proto__` in a live object or its annotation stays data.

import { isDeepStrictEqual } from 'node:util';
import type { XObject } from '../model/object.ts';
import { setOwn } from '../model/prototype-safety.ts';

export const LAST_APPLIED = 'xenos.io/last-applied';

type Json = unknown;
type JsonObject = Record<string, Json>;

function isObject(v: Json): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The desired object as applied: status dropped (a subresource apply never sets), and the
 *  configuration itself recorded in the last-applied annotation. */
export function withLastApplied(desired: XObject): XObject {
  const { status: _status, ...config } = structuredClone(desired);
  const annotations = { ...(config.metadata.annotations ?? {}) };
  delete annotations[LAST_APPLIED];
  if (Object.keys(annotations).length) config.metadata.annotations = annotations;
  else delete config.metadata.annotations;
  const recorded = JSON.stringify(config);
  return {
    ...config,
    metadata: { ...config.metadata, annotations: { ...annotations, [LAST_APPLIED]: recorded } },
  } as XObject;
}

/** The configuration applied last, from the live object's annotation (undefined if none). It is
 *  whatever JSON mapping the annotation holds: a hand-edited one is used as it is, as kubectl does. */
export function lastApplied(live: XObject): JsonObject | undefined {
  const text = live.metadata.annotations?.[LAST_APPLIED];
  if (!text) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Additions and changes: what `modified` sets that `current` does not have the same. */
function changes(current: Json, modified: Json): JsonObject {
  const patch: JsonObject = {};
  if (!isObject(modified)) return patch;
  const cur = isObject(current) ? current : {};
  for (const [k, v] of Object.entries(modified)) {
    const was = Object.hasOwn(cur, k) ? cur[k] : undefined;
    if (isObject(v) && isObject(was)) {
      const sub = changes(was, v);
      if (Object.keys(sub).length) setOwn(patch, k, sub);
    } else if (!isDeepStrictEqual(was, v)) {
      setOwn(patch, k, v === null ? null : structuredClone(v));
    }
  }
  return patch;
}

/** Deletions: fields `original` had and `modified` does not, as nulls. */
function deletions(original: Json, modified: Json, current: Json): JsonObject {
  const patch: JsonObject = {};
  if (!isObject(original) || !isObject(modified)) return patch;
  const cur = isObject(current) ? current : {};
  for (const [k, v] of Object.entries(original)) {
    if (!Object.hasOwn(modified, k)) {
      if (Object.hasOwn(cur, k)) setOwn(patch, k, null);
    } else if (isObject(v) && isObject(modified[k])) {
      const sub = deletions(v, modified[k], Object.hasOwn(cur, k) ? cur[k] : undefined);
      if (Object.keys(sub).length) setOwn(patch, k, sub);
    }
  }
  return patch;
}

function merge(a: JsonObject, b: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(a)) setOwn(out, k, v);
  for (const [k, v] of Object.entries(b)) {
    const was = Object.hasOwn(out, k) ? out[k] : undefined;
    setOwn(out, k, isObject(was) && isObject(v) ? merge(was, v) : v);
  }
  return out;
}

/**
 * The merge patch that takes `live` to `modified` (the output of withLastApplied), or undefined
 * when nothing would change. `original` defaults to the live object's last-applied annotation.
 */
export function threeWayPatch(
  live: XObject,
  modified: XObject,
  original: Json = lastApplied(live),
): JsonObject | undefined {
  const patch = merge(deletions(original, modified, live), changes(live, modified));
  // status is a subresource: never part of an apply.
  delete patch.status;
  return Object.keys(patch).length ? patch : undefined;
}
