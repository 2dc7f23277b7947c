// The small JSON frames Xenos's stream protocols open with (an image request and its reply header, a
// migration or layer-copy stream's header and answer): size-capped both ways, and a peer's bytes accepted
// only as one JSON object. Each protocol names its own error, so its callers can tell its failures apart.
//
// The migration and layer-copy protocols put each frame behind an unsigned varint length and read it on the
// stream's own Duplex. Reading them on the Duplex itself (rather than through a framing wrapper that is
// later unwrapped) means the bytes that arrive with a frame — the driver's first bytes, even with the peer's
// close — stay in the Duplex for the driver.

import { once } from 'node:events';
import type { Duplex } from 'node:stream';

type MakeError = (message: string) => Error;

/** A frame announced over its cap: not read further. Named apart from the protocols' own errors, as a
 *  protocol may answer those but resets the stream on this (the migration receiver does). */
export class FrameTooLargeError extends Error {
  constructor(what: string, length: number, max: number) {
    super(`${what} is ${length} bytes, over the cap of ${max}`);
    this.name = 'FrameTooLargeError';
  }
}

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

/** `payload` behind its unsigned varint length. */
export function lengthPrefixed(payload: Uint8Array): Buffer {
  const head: number[] = [];
  let n = payload.byteLength;
  do {
    head.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Buffer.concat([Buffer.from(head), payload]);
}

/** The varint at the start of `buf`: its value and length, or undefined while incomplete. */
function varint(buf: Buffer, what: string): { value: number; size: number } | undefined {
  let value = 0;
  for (let i = 0; i < buf.length; i++) {
    if (i >= 4) throw new FrameTooLargeError(what, Number.POSITIVE_INFINITY, 2 ** 28);
    value |= (buf[i] & 0x7f) << (7 * i);
    if ((buf[i] & 0x80) === 0) return { value, size: i + 1 };
  }
  return undefined;
}

/** Reads one frame of at most `max` bytes from `stream`, leaving whatever follows it in the stream: a
 *  FrameTooLargeError when its length is over `max`, `makeError` when the stream ends before it. */
export async function readFrame(
  stream: Duplex,
  max: number,
  what: string,
  signal: AbortSignal,
  makeError: MakeError,
): Promise<Buffer> {
  let buf = Buffer.alloc(0);
  for (;;) {
    const len = varint(buf, what);
    if (len && len.value > max) throw new FrameTooLargeError(what, len.value, max);
    if (len && buf.length >= len.size + len.value) {
      const end = len.size + len.value;
      if (buf.length > end) stream.unshift(buf.subarray(end));
      return buf.subarray(len.size, end);
    }
    const chunk = stream.read() as Buffer | null;
    if (chunk) {
      buf = Buffer.concat([buf, chunk]);
      continue;
    }
    if (stream.readableEnded || stream.destroyed) throw makeError(`${what}: the stream ended before it`);
    signal.throwIfAborted();
    await Promise.race([
      once(stream, 'readable', { signal }),
      once(stream, 'end', { signal }),
      once(stream, 'close', { signal }),
    ]);
  }
}
