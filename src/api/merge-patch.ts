// JSON merge patch (RFC 7386), used for `application/merge-patch+json` and, as a documented
// simplification of server-side apply, for `application/apply-patch+yaml` too.

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Apply `patch` to `target` per RFC 7386: objects merge key by key, `null` removes a key,
 *  anything else (arrays included) replaces. Returns a new value; inputs are not changed. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const result: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}
