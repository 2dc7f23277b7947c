// The wire form of a state-replication message: UTF-8 JSON, refused above a byte cap on both the
// sending and the receiving side. Shared by every transport so they agree on what fits. A reply
// that is an error travels as { error: message }.

import { MalformedMessageError, MessageTooLargeError } from './errors.ts';

/** Default cap of one message (request or reply). */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeMessage(message: unknown, maxBytes: number, what = 'message'): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(message));
  if (bytes.byteLength > maxBytes) throw new MessageTooLargeError(what, bytes.byteLength, maxBytes);
  return bytes;
}

export function decodeMessage(bytes: Uint8Array, maxBytes: number, what = 'message'): unknown {
  if (bytes.byteLength > maxBytes) throw new MessageTooLargeError(what, bytes.byteLength, maxBytes);
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch (err) {
    throw new MalformedMessageError(`${what} is not UTF-8 JSON (${(err as Error).message})`);
  }
}

/** A reply envelope: the handler's result, or the error it threw. */
export type ReplyEnvelope = { ok: unknown } | { error: string };

export function isReplyEnvelope(v: unknown): v is ReplyEnvelope {
  if (v === null || typeof v !== 'object') return false;
  return 'ok' in v || ('error' in v && typeof (v as { error: unknown }).error === 'string');
}
