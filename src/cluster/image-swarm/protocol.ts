// The wire form of `/xenos/image/1.0.0`, the stream protocol hosts pull image chunks over. One stream per
// request, every message a length-prefixed frame (unsigned varint, as @libp2p/utils' lpStream frames it):
//
//   puller → holder: one JSON request (≤ 1 KiB)
//       {"op":"manifest","digest":D}                 the manifest's exact bytes
//       {"op":"have","digest":D}                     the holder's have bitmap (bit i&7 of byte i>>3)
//       {"op":"chunk","digest":D,"manifest":M,"index":i,"offers":true}   chunk i of the blob cut by
//                                                    manifest M; `offers`: the puller takes a Declined
//   holder → puller: one JSON header (≤ 4 KiB)
//       {"ok":true,"manifest":M,"length":L}           then L bytes in data frames of 1..256 KiB, then close;
//                                                    a have answer may add "peers":[P,...]: up to 16 other
//                                                    peers that asked for the image lately (peer-exchange.ts)
//       {"error":{"code":C,"message":"..."}}          then close; C is one of ERROR_CODES
//       {"error":{"code":"Declined","message":"...","offer":[j,...]}}   a seed's first pass (first-pass.ts):
//                                                    ask for one of the offered chunks instead
//
// Connections are the cluster's (cluster key, Noise), so the holder is a host of the cluster, but nothing
// it sends is believed: a manifest is taken only when it hashes to the manifest digest a holder published
// in the replicated store, a chunk only when it hashes to its manifest entry, and every length is checked
// against the manifest before a byte is read. Requests are capped at 1 KiB and refused unless they parse.

import { DIGEST_PATTERN } from '../../images/digest.ts';
import { decodeJsonObject, encodeJsonFrame } from '../../p2p/json-frame.ts';
import { MAX_PEX_PEERS } from './peer-exchange.ts';

export const IMAGE_PROTOCOL = '/xenos/image/1.0.0';
export const MAX_REQUEST_BYTES = 1024;
export const MAX_HEADER_BYTES = 4 * 1024;
/** Data frames carry at most this much: small enough to interleave streams, large enough to amortise. */
export const MAX_FRAME_BYTES = 256 * 1024;

export const ERROR_CODES = [
  /** The holder has no such image (or it is being removed). */
  'NotHeld',
  /** The holder has the image but not this chunk yet (a partial holder), or its manifest is another. */
  'ChunkNotHeld',
  'ManifestMismatch',
  /** The holder serves as many streams as it will at once: ask another, or again later. */
  'Busy',
  'BadRequest',
  'Internal',
  /** A seed in its first pass sent this chunk to another peer just now: take it from that peer, and one
   *  of the `offer`ed chunks from the seed. Only to requests that said `offers: true`. */
  'Declined',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export type ImageRequest =
  | { op: 'manifest'; digest: string }
  | { op: 'have'; digest: string }
  | { op: 'chunk'; digest: string; manifest: string; index: number; offers?: boolean };

export type ReplyHeader =
  | { ok: true; manifest: string; length: number; peers?: string[] }
  | { error: { code: ErrorCode; message: string; offer?: number[] } };

/** A request or header that is not what the protocol allows. */
export class ImageProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageProtocolError';
  }
}

const MAX_INDEX = 2 ** 31 - 1;
/** A libp2p peer ID as text (base58btc: `12D3KooW…` for Ed25519 keys, `Qm…` for RSA). */
const PEER_ID_PATTERN = /^[1-9A-HJ-NP-Za-km-z]{40,128}$/;
/** Chunks a Declined answer may offer. */
export const MAX_OFFER = 64;

const protocolError = (message: string) => new ImageProtocolError(message);

export function encodeFrame(value: unknown, max: number, what: string): Uint8Array {
  return encodeJsonFrame(value, max, what, protocolError);
}

/** A request's shape, or ImageProtocolError naming what is wrong with it. */
export function parseRequest(bytes: Uint8Array): ImageRequest {
  if (bytes.byteLength > MAX_REQUEST_BYTES)
    throw new ImageProtocolError(
      `request of ${bytes.byteLength} bytes, over the cap of ${MAX_REQUEST_BYTES}`,
    );
  const r = decodeJsonObject(bytes, MAX_REQUEST_BYTES, 'the request', protocolError);
  const digest = r.digest;
  if (typeof digest !== 'string' || !DIGEST_PATTERN.test(digest))
    throw new ImageProtocolError('request: digest must be sha256:<64 lower-case hex>');
  if (r.op === 'manifest' || r.op === 'have') return { op: r.op, digest };
  if (r.op !== 'chunk') throw new ImageProtocolError('request: op must be manifest, have or chunk');
  const { manifest, index } = r;
  if (typeof manifest !== 'string' || !DIGEST_PATTERN.test(manifest))
    throw new ImageProtocolError('request: manifest must be sha256:<64 lower-case hex>');
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > MAX_INDEX)
    throw new ImageProtocolError(`request: index must be an integer 0..${MAX_INDEX}`);
  return { op: 'chunk', digest, manifest, index, ...(r.offers === true ? { offers: true } : {}) };
}

/** A reply header's shape, or ImageProtocolError. `maxLength` bounds what the puller will read. */
export function parseHeader(bytes: Uint8Array, maxLength: number, from: string): ReplyHeader {
  if (bytes.byteLength > MAX_HEADER_BYTES)
    throw new ImageProtocolError(`the answer of ${from} is over ${MAX_HEADER_BYTES} bytes`);
  const h = decodeJsonObject(bytes, MAX_HEADER_BYTES, `the answer of ${from}`, protocolError);
  if (h.ok === true) {
    const { manifest, length } = h;
    if (typeof manifest !== 'string' || !DIGEST_PATTERN.test(manifest))
      throw new ImageProtocolError(`the answer of ${from} names no manifest digest`);
    if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0 || length > maxLength)
      throw new ImageProtocolError(
        `the answer of ${from} announces ${length} bytes, more than the ${maxLength} expected`,
      );
    if (h.peers === undefined) return { ok: true, manifest, length };
    const peers = h.peers;
    if (
      !Array.isArray(peers) ||
      peers.length > MAX_PEX_PEERS ||
      !peers.every((p) => typeof p === 'string' && PEER_ID_PATTERN.test(p))
    )
      throw new ImageProtocolError(
        `the answer of ${from} names something other than up to ${MAX_PEX_PEERS} peer IDs`,
      );
    return { ok: true, manifest, length, peers: peers as string[] };
  }
  const e = h.error as { code?: unknown; message?: unknown; offer?: unknown } | undefined;
  if (e && ERROR_CODES.includes(e.code as ErrorCode) && typeof e.message === 'string') {
    const error = { code: e.code as ErrorCode, message: e.message.slice(0, 1024) };
    if (e.offer === undefined) return { error };
    const offer = e.offer;
    if (
      !Array.isArray(offer) ||
      offer.length > MAX_OFFER ||
      !offer.every((i) => Number.isInteger(i) && i >= 0 && i <= MAX_INDEX)
    )
      throw new ImageProtocolError(
        `the answer of ${from} offers something other than up to ${MAX_OFFER} chunk indexes`,
      );
    return { error: { ...error, offer: offer as number[] } };
  }
  throw new ImageProtocolError(`the answer of ${from} is neither {ok} nor {error}`);
}
