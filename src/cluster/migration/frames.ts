// The two small frames that open a migration stream (the header, the answer), read and written on the
// stream's own Duplex: an unsigned varint length, then that many bytes. Reading them on the Duplex itself
// (rather than through a framing wrapper that is later unwrapped) means the bytes that arrive with a
// frame — the driver's first bytes, even with the peer's close — stay in the Duplex for the driver.

import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { FrameTooLargeError } from './errors.ts';
import { MigrationProtocolError } from './protocol.ts';

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

/** Reads one frame of at most `max` bytes from `stream`, leaving whatever follows it in the stream. */
export async function readFrame(
  stream: Duplex,
  max: number,
  what: string,
  signal: AbortSignal,
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
    if (stream.readableEnded || stream.destroyed)
      throw new MigrationProtocolError(`${what}: the stream ended before it`);
    signal.throwIfAborted();
    await Promise.race([
      once(stream, 'readable', { signal }),
      once(stream, 'end', { signal }),
      once(stream, 'close', { signal }),
    ]);
  }
}
