// The membership protocol's messages: their JSON wire form, size caps, the checks every received message
// passes before the protocol looks at it, and the signed statements inside them.
//
// Probe channel (/xenos/swim/1.0.0, ≤ 8 KiB a message): ping, ack, ping-req ("req") and gossip, each with
// piggybacked updates. Sync channel (/xenos/swim/sync/1.0.0, ≤ 2 MiB): a full state exchange.
// Updates are signed, because they are relayed: `alive` by the member it is about (only a member raises
// its own incarnation), `suspect` by the member that suspects (so independent suspicions can be counted
// and a lone member's cannot be multiplied). An ack relayed through a helper carries the target's
// signature over the requester's nonce, so a helper cannot invent one.

import { verifyPeerSignature } from '../peer-signature.ts';
import { MalformedMessageError, MessageTooLargeError } from './errors.ts';

export const SWIM_PROTOCOL = '/xenos/swim/1.0.0';
export const SWIM_SYNC_PROTOCOL = '/xenos/swim/sync/1.0.0';
export const MAX_PROBE_MESSAGE_BYTES = 8 * 1024;
export const MAX_SYNC_MESSAGE_BYTES = 2 * 1024 * 1024;
export const MAX_UPDATES_PER_MESSAGE = 32;
export const MAX_ADDRS = 8;
export const MAX_ADDR_CHARS = 256;
/** Members in one sync message (and in one host's view). */
export const MAX_MEMBERS = 4096;

export type Channel = 'probe' | 'sync';

/** `p` is alive at incarnation `i`, reachable at `m`; signed by `p`. */
export interface AliveUpdate {
  k: 'alive';
  p: string;
  i: number;
  m: string[];
  g: string;
}

/** `f` suspects `p` at incarnation `i`; signed by `f`. */
export interface SuspectUpdate {
  k: 'suspect';
  p: string;
  i: number;
  f: string;
  g: string;
}

export type Update = AliveUpdate | SuspectUpdate;

export type MemberState = 'alive' | 'suspect' | 'dead';

export interface SyncEntry {
  a: AliveUpdate;
  st: MemberState;
}

export type ProbeMessage =
  /** `n`: a nonce when the ping is made for another member's ping-req; the ack then signs it. */
  | { t: 'ping'; s: number; n?: string; u?: Update[] }
  /** `x` and `g`: a relayed ack, with the target `x`'s signature over the requester's nonce. */
  | { t: 'ack'; s: number; x?: string; g?: string; u?: Update[] }
  | { t: 'req'; s: number; x: string; n: string; u?: Update[] }
  | { t: 'gossip'; u: Update[] };

export interface SyncMessage {
  t: 'sync';
  /** Whether the receiver should answer with its own state. */
  r: boolean;
  ms: SyncEntry[];
}

export type Message = ProbeMessage | SyncMessage;

const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{40,64}$/;
const SIG = /^[A-Za-z0-9_-]{86}$/;
const NONCE = /^[A-Za-z0-9_-]{16,64}$/;
const STATES: readonly string[] = ['alive', 'suspect', 'dead'];

const ALIVE_DOMAIN = 'xenos/swim/alive/1\n';
const SUSPECT_DOMAIN = 'xenos/swim/suspect/1\n';
const ACK_DOMAIN = 'xenos/swim/ack/1\n';

export function aliveStatement(p: string, i: number, m: string[]): Uint8Array {
  return Buffer.from(ALIVE_DOMAIN + JSON.stringify([p, i, m]));
}

export function suspectStatement(p: string, i: number, f: string): Uint8Array {
  return Buffer.from(SUSPECT_DOMAIN + JSON.stringify([p, i, f]));
}

export function ackStatement(target: string, nonce: string): Uint8Array {
  return Buffer.from(ACK_DOMAIN + JSON.stringify([target, nonce]));
}

/** Updates whose signatures checked out, keyed by their whole content (never by the signature alone: a
 *  valid signature copied onto another statement must be checked, and fail). One cache per process: the
 *  check's answer is the same for every host in it. */
const verified = new Set<string>();
const VERIFIED_CACHE = 16_384;

function contentKey(u: Update): string {
  return JSON.stringify(u.k === 'alive' ? [u.k, u.p, u.i, u.m, u.g] : [u.k, u.p, u.i, u.f, u.g]);
}

/** Whether an update's signature is its signer's (the member for alive, the suspector for suspect). */
export function verifyUpdate(u: Update): boolean {
  const key = contentKey(u);
  if (verified.has(key)) return true;
  const sig = Buffer.from(u.g, 'base64url');
  const ok =
    u.k === 'alive'
      ? verifyPeerSignature(u.p, aliveStatement(u.p, u.i, u.m), sig)
      : verifyPeerSignature(u.f, suspectStatement(u.p, u.i, u.f), sig);
  if (ok) rememberVerified(u);
  return ok;
}

/** An update known good (one this host just signed): later copies are not checked again. */
export function rememberVerified(u: Update): void {
  if (verified.size >= VERIFIED_CACHE) verified.clear();
  verified.add(contentKey(u));
}

export function verifyAck(target: string, nonce: string, g: string): boolean {
  return verifyPeerSignature(target, ackStatement(target, nonce), Buffer.from(g, 'base64url'));
}

export function encodeMessage(msg: Message, channel: Channel): Uint8Array {
  const bytes = Buffer.from(JSON.stringify(msg));
  const cap = capOf(channel);
  if (bytes.byteLength > cap) throw new MessageTooLargeError(bytes.byteLength, cap, `${msg.t} message`);
  return bytes;
}

export function capOf(channel: Channel): number {
  return channel === 'probe' ? MAX_PROBE_MESSAGE_BYTES : MAX_SYNC_MESSAGE_BYTES;
}

/** The encoded size of one update (for the piggyback budget). */
export function updateBytes(u: Update): number {
  return Buffer.byteLength(JSON.stringify(u)) + 1;
}

/** Parses and checks a message from a peer: size, JSON, every field's type and bound. Signatures are
 *  checked by the protocol (only for updates it has not seen yet). Throws MalformedMessageError. */
export function decodeMessage(bytes: Uint8Array, channel: Channel): Message {
  const cap = capOf(channel);
  if (bytes.byteLength > cap) throw new MessageTooLargeError(bytes.byteLength, cap, 'message');
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    throw new MalformedMessageError('not JSON');
  }
  if (!isObject(v)) throw new MalformedMessageError('not an object');
  if (channel === 'sync') {
    if (v.t !== 'sync') throw new MalformedMessageError(`type ${str(v.t)} on the sync channel`);
    if (typeof v.r !== 'boolean') throw new MalformedMessageError('sync.r is not a boolean');
    if (!Array.isArray(v.ms) || v.ms.length > MAX_MEMBERS)
      throw new MalformedMessageError(`sync.ms is not a list of at most ${MAX_MEMBERS} members`);
    v.ms.forEach((e, i) => {
      if (!isObject(e) || !STATES.includes(e.st as string))
        throw new MalformedMessageError(`sync.ms[${i}]: not {a, st}`);
      checkUpdate(e.a, `sync.ms[${i}].a`);
      if ((e.a as Update).k !== 'alive') throw new MalformedMessageError(`sync.ms[${i}].a is not alive`);
    });
    return v as unknown as SyncMessage;
  }
  switch (v.t) {
    case 'ping':
      checkSeq(v.s);
      if (v.n !== undefined && !(typeof v.n === 'string' && NONCE.test(v.n)))
        throw new MalformedMessageError('ping.n is not a nonce');
      break;
    case 'ack':
      checkSeq(v.s);
      if ((v.x === undefined) !== (v.g === undefined))
        throw new MalformedMessageError('ack: x and g come together');
      if (v.x !== undefined) checkPeer(v.x, 'ack.x');
      if (v.g !== undefined && !(typeof v.g === 'string' && SIG.test(v.g)))
        throw new MalformedMessageError('ack.g is not a signature');
      break;
    case 'req':
      checkSeq(v.s);
      checkPeer(v.x, 'req.x');
      if (!(typeof v.n === 'string' && NONCE.test(v.n)))
        throw new MalformedMessageError('req.n is not a nonce');
      break;
    case 'gossip':
      if (v.u === undefined) throw new MalformedMessageError('gossip without updates');
      break;
    default:
      throw new MalformedMessageError(`unknown type ${str(v.t)}`);
  }
  if (v.u !== undefined) {
    if (!Array.isArray(v.u) || v.u.length > MAX_UPDATES_PER_MESSAGE)
      throw new MalformedMessageError(`u is not a list of at most ${MAX_UPDATES_PER_MESSAGE} updates`);
    v.u.forEach((u, i) => {
      checkUpdate(u, `u[${i}]`);
    });
  }
  return v as unknown as ProbeMessage;
}

function checkUpdate(u: unknown, where: string): void {
  if (!isObject(u)) throw new MalformedMessageError(`${where}: not an object`);
  checkPeer(u.p, `${where}.p`);
  if (!(Number.isSafeInteger(u.i) && (u.i as number) >= 0))
    throw new MalformedMessageError(`${where}.i is not an incarnation`);
  if (!(typeof u.g === 'string' && SIG.test(u.g)))
    throw new MalformedMessageError(`${where}.g is not a signature`);
  if (u.k === 'alive') {
    if (!Array.isArray(u.m) || u.m.length > MAX_ADDRS)
      throw new MalformedMessageError(`${where}.m is not a list of at most ${MAX_ADDRS} addresses`);
    for (const a of u.m)
      if (!(typeof a === 'string' && a.startsWith('/') && a.length <= MAX_ADDR_CHARS))
        throw new MalformedMessageError(
          `${where}.m: not a multiaddr of at most ${MAX_ADDR_CHARS} characters`,
        );
  } else if (u.k === 'suspect') {
    checkPeer(u.f, `${where}.f`);
  } else {
    throw new MalformedMessageError(`${where}.k is ${str(u.k)}, not alive or suspect`);
  }
}

function checkSeq(s: unknown): void {
  if (!(Number.isSafeInteger(s) && (s as number) >= 0))
    throw new MalformedMessageError('s is not a sequence number');
}

function checkPeer(p: unknown, where: string): void {
  if (!(typeof p === 'string' && PEER_ID.test(p)))
    throw new MalformedMessageError(`${where} is not a peer id`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string {
  return JSON.stringify(v)?.slice(0, 40) ?? String(v);
}
