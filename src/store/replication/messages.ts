// The messages of the state-replication protocol and the checks every one of them passes before it
// is used. Rows are checked one by one (a bad row is dropped, the rest of its batch still applies);
// a message whose frame is wrong is refused whole.
//
//   push      {type:'push', rows}                 → {applied, rejected}   (local writes of the sender)
//   digest    {type:'digest', buckets: hash[]}    → {buckets: index[], versions: WireVersion[], more}
//   exchange  {type:'exchange', rows, want: key[]} → {rows, answered, applied, rejected}
//   whois     {type:'whois', names: host[]}      → {bindings: [name, peerId | null][]}
//             (which peer id a host name is bound to here: a joining host checks its name is free)

import type { ReplicatedRow } from '../sqlite-store.ts';
import { MalformedMessageError } from './errors.ts';

/** An object's key on the wire: [kind, namespace, name]. */
export type WireKey = [string, string, string];
/** The versions of one row on the wire: [kind, namespace, name, hlc, statusHlc]. */
export type WireVersion = [string, string, string, string, string];

export type SyncRequest =
  | { type: 'push'; rows: unknown[] }
  | { type: 'digest'; buckets: string[] }
  | { type: 'exchange'; rows: unknown[]; want: WireKey[] }
  | { type: 'whois'; names: string[] };

export interface PushReply {
  applied: number;
  rejected: number;
}

export interface DigestReply {
  /** The differing buckets whose versions are all in `versions`. */
  buckets: number[];
  versions: WireVersion[];
  /** More buckets differ than fitted in this reply: sync again. */
  more: boolean;
}

export interface ExchangeReply {
  rows: unknown[];
  /** How many keys of `want`, from the start, this reply answers (the rest did not fit). */
  answered: number;
  applied: number;
  rejected: number;
}

const MAX_TEXT = 512;
/** A proof: a peer id (52 characters) and a base64url Ed25519 signature (86); room to spare. */
const MAX_PROOF = 1024;

export function parseRequest(m: unknown): SyncRequest {
  if (!isRecord(m)) throw new MalformedMessageError('a request must be an object');
  switch (m.type) {
    case 'push':
      return { type: 'push', rows: array(m.rows, 'push.rows') };
    case 'digest': {
      const buckets = array(m.buckets, 'digest.buckets');
      if (!buckets.every((b) => typeof b === 'string' && b.length <= 128)) {
        throw new MalformedMessageError('digest.buckets must hold hash strings');
      }
      return { type: 'digest', buckets: buckets as string[] };
    }
    case 'exchange': {
      const want = array(m.want, 'exchange.want');
      if (!want.every((k) => isTuple(k, 3)))
        throw new MalformedMessageError('exchange.want must hold [kind, namespace, name]');
      return { type: 'exchange', rows: array(m.rows, 'exchange.rows'), want: want as WireKey[] };
    }
    case 'whois': {
      const names = array(m.names, 'whois.names');
      if (names.length > 16 || !names.every((n) => typeof n === 'string' && n.length <= MAX_TEXT))
        throw new MalformedMessageError('whois.names must hold at most 16 host names');
      return { type: 'whois', names: names as string[] };
    }
    default:
      throw new MalformedMessageError(`unknown request type ${String(JSON.stringify(m.type)).slice(0, 64)}`);
  }
}

/** A whois reply: name → the peer id it is bound to (names bound to none are absent). */
export function parseWhoisReply(m: unknown): Map<string, string> {
  if (!isRecord(m)) throw new MalformedMessageError('a whois reply must be {bindings}');
  const out = new Map<string, string>();
  for (const b of array(m.bindings, 'whois reply bindings')) {
    if (
      !Array.isArray(b) ||
      b.length !== 2 ||
      typeof b[0] !== 'string' ||
      (b[1] !== null && typeof b[1] !== 'string')
    )
      throw new MalformedMessageError('whois reply bindings must hold [name, peerId | null]');
    if (b[1] !== null) out.set(b[0], b[1]);
  }
  return out;
}

export function parsePushReply(m: unknown): PushReply {
  if (!isRecord(m) || typeof m.applied !== 'number' || typeof m.rejected !== 'number') {
    throw new MalformedMessageError('a push reply must be {applied, rejected}');
  }
  return { applied: m.applied, rejected: m.rejected };
}

export function parseDigestReply(m: unknown, bucketCount: number): DigestReply {
  if (!isRecord(m) || typeof m.more !== 'boolean')
    throw new MalformedMessageError('a digest reply must be {buckets, versions, more}');
  const buckets = array(m.buckets, 'digest reply buckets');
  if (!buckets.every((b) => Number.isInteger(b) && (b as number) >= 0 && (b as number) < bucketCount)) {
    throw new MalformedMessageError(`digest reply buckets must be integers in [0, ${bucketCount})`);
  }
  const versions = array(m.versions, 'digest reply versions');
  if (!versions.every((v) => isTuple(v, 5))) {
    throw new MalformedMessageError(
      'digest reply versions must hold [kind, namespace, name, hlc, statusHlc]',
    );
  }
  return { buckets: buckets as number[], versions: versions as WireVersion[], more: m.more };
}

export function parseExchangeReply(m: unknown, wanted: number): ExchangeReply {
  if (!isRecord(m)) throw new MalformedMessageError('an exchange reply must be an object');
  const { answered, applied, rejected } = m;
  if (!Number.isInteger(answered) || (answered as number) < 0 || (answered as number) > wanted) {
    throw new MalformedMessageError(`exchange reply "answered" must be an integer in [0, ${wanted}]`);
  }
  if (typeof applied !== 'number' || typeof rejected !== 'number') {
    throw new MalformedMessageError('an exchange reply must count applied and rejected rows');
  }
  return { rows: array(m.rows, 'exchange reply rows'), answered: answered as number, applied, rejected };
}

/** The row, if `v` is shaped like one; otherwise throws MalformedMessageError saying what is wrong. Does not
 *  check the object against its kind's schema (the replicator's validate does), the versions' syntax or the
 *  proofs (the store does). Proofs absent on the wire are '' (unsigned: a store with an authority refuses
 *  them). */
export function checkRowEnvelope(v: unknown): ReplicatedRow {
  if (!isRecord(v)) throw new MalformedMessageError('a row must be an object');
  for (const f of ['kind', 'namespace', 'name', 'hlc', 'writer', 'statusHlc', 'statusWriter'] as const) {
    const x = v[f];
    if (typeof x !== 'string' || x.length > MAX_TEXT)
      throw new MalformedMessageError(`row field ${f} must be a string of at most ${MAX_TEXT} characters`);
  }
  for (const f of ['proof', 'statusProof'] as const) {
    const x = v[f];
    if (x !== undefined && (typeof x !== 'string' || x.length > MAX_PROOF))
      throw new MalformedMessageError(`row field ${f} must be a string of at most ${MAX_PROOF} characters`);
  }
  if (typeof v.deleted !== 'boolean')
    throw new MalformedMessageError('row field deleted must be true or false');
  const obj = v.object;
  if (!isRecord(obj) || !isRecord(obj.metadata))
    throw new MalformedMessageError('row field object must be an object with metadata');
  if ('spec' in obj && obj.spec !== undefined && !isRecord(obj.spec))
    throw new MalformedMessageError('object.spec must be an object');
  if ('status' in obj && obj.status !== undefined && !isRecord(obj.status))
    throw new MalformedMessageError('object.status must be an object');
  const base = v.statusBase;
  if (base !== undefined) {
    const ok =
      isRecord(base) &&
      (['hlc', 'writer', 'proof', 'volatile'] as const).every(
        (f) => typeof base[f] === 'string' && (base[f] as string).length <= MAX_PROOF,
      );
    if (!ok) throw new MalformedMessageError('row field statusBase must be {hlc, writer, proof, volatile}');
  }
  const row = v as unknown as ReplicatedRow;
  return { ...row, proof: row.proof ?? '', statusProof: row.statusProof ?? '' };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isTuple(v: unknown, n: number): boolean {
  return Array.isArray(v) && v.length === n && v.every((x) => typeof x === 'string' && x.length <= MAX_TEXT);
}

function array(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new MalformedMessageError(`${what} must be an array`);
  return v;
}
