// JSON merge patch (RFC 7386), used for `application/merge-patch+json` and, as a documented
// simplification of server-side apply, for `application/apply-patch+yaml` too. It reads and writes
// only own properties, so a patch key such as `__proto__` can never reach a prototype; the API refuses
// such keys before this runs, and this refuses them again for any other caller.

import { isPrototypeKey, prototypeKeyMessage, setOwn } from '../model/prototype-safety.ts';
import { formatFieldPath, type PathSegment } from './field-path.ts';

type Json = unknown;

export class MergePatchError extends Error {
  /** Where the patch went wrong, as a field path (`spec.parameters`). */
  readonly path: string;

  constructor(path: string, message: string) {
    super(`${path ? `${path}: ` : ''}${message}`);
    this.name = 'MergePatchError';
    this.path = path;
  }
}

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Apply `patch` to `target` per RFC 7386: objects merge key by key, `null` removes a key,
 *  anything else (arrays included) replaces. Returns a new value; inputs are not changed. */
export function mergePatch(target: Json, patch: Json): Json {
  return merge(target, patch, []);
}

function merge(target: Json, patch: Json, path: PathSegment[]): Json {
  if (!isObject(patch)) {
    checkKeys(patch, path);
    return structuredClone(patch);
  }
  const result: Record<string, Json> = {};
  if (isObject(target)) for (const key of Object.keys(target)) setOwn(result, key, target[key]);
  for (const key of Object.keys(patch)) {
    const at = [...path, key];
    if (isPrototypeKey(key)) throw new MergePatchError(formatFieldPath(at), prototypeKeyMessage(key));
    const value = patch[key];
    if (value === null) delete result[key];
    else setOwn(result, key, merge(Object.hasOwn(result, key) ? result[key] : undefined, value, at));
  }
  return result;
}

/** A value that replaces wholesale (a list, say) may not carry prototype keys either. */
function checkKeys(v: Json, path: PathSegment[]): void {
  if (Array.isArray(v)) for (let i = 0; i < v.length; i++) checkKeys(v[i], [...path, i]);
  else if (isObject(v))
    for (const key of Object.keys(v)) {
      if (isPrototypeKey(key))
        throw new MergePatchError(formatFieldPath([...path, key]), prototypeKeyMessage(key));
      checkKeys(v[key], [...path, key]);
    }
}
