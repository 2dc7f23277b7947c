// The small JSON frames Xenos's stream protocols open with (an image request and its reply header, a
// migration stream's header and answer): size-capped both ways, and a peer's bytes accepted only as one
// JSON object. Each protocol names its own error, so its callers can tell its failures apart.

type MakeError = (message: string) => Error;

/** The JSON of `value`, or `makeError` when it is over `max` bytes. */
export function encodeJsonFrame(value: unknown, max: number, what: string, makeError: MakeError): Uint8Array {
  const bytes = Buffer.from(JSON.stringify(value), 'utf8');
  if (bytes.byteLength > max) throw makeError(`${what} is ${bytes.byteLength} bytes, over the cap of ${max}`);
  return bytes;
}

/** `bytes` as one JSON object, or `makeError` naming what is wrong (over `max` bytes, not JSON, not an
 *  object). */
export function decodeJsonObject(
  bytes: Uint8Array,
  max: number,
  what: string,
  makeError: MakeError,
): Record<string, unknown> {
  if (bytes.byteLength > max) throw makeError(`${what} is ${bytes.byteLength} bytes, over the cap of ${max}`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw makeError(`${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw makeError(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}
