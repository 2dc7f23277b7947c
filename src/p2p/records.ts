// Signed records in the DHT namespace `/xenos/...`: what a host publishes about itself (`/xenos/host/<peerId>`)
// and about each instance it runs (`/xenos/inst/<peerId>/<namespace>/<name>`), signed with the host's libp2p
// Ed25519 key. Holds the envelope format, the DHT validator and selector installed on every node for the
// namespace. Publishing and fetching them is record-publisher.ts's job.
//
// Encoding: JSON, `{"body":"<JSON text of the record>","sig":"<base64url Ed25519 signature>"}`. Why JSON and
// not CBOR: payloads are JSON already (statuses, endpoints), records are small, the bytes can be read with jq
// when debugging a cluster, ajv checks them directly, and no extra codec is needed. The signature covers the
// exact body bytes (prefixed by a domain tag), so no canonical form is needed: the body is never re-encoded.
//
// What the validator enforces, on every peer that is asked to store a record and on our own puts:
// size (<= MAX_RECORD_BYTES), schema, key shape, that the record's key is the DHT key, that the key names the
// signer (`<peerId>` in the key === body.peerId) and the signature verifies with that peer's public key, that
// it has an expiry no more than MAX_RECORD_LIFETIME_MS after its issue, was not issued in the future (beyond
// MAX_RECORD_SKEW_MS) and has not expired, and that it is not older than the record the peer already holds
// (kad-dht's PUT handler overwrites without comparing, so the comparison lives here): a lower seq, or the same
// seq with different bytes, is rejected. Refusals are counted by reason (RECORDS_REFUSED_METRIC).
//
// Replays: a peer that holds a newer record refuses an older one by seq. A peer that never saw the newer one
// takes a replayed record only while it is unexpired — within its publisher's TTL of its issue (xenosd: the
// host timeout, 15 s by default), never a record from long ago.

import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { Ajv } from 'ajv';
import type { Log } from '../log/logger.ts';
import { RefusalCounter } from '../metrics/refusals.ts';
import { DNS1123_LABEL_FRAGMENT, DNS1123_SUBDOMAIN_FRAGMENT } from '../model/names.ts';
import { InvalidRecordError } from './errors.ts';

/** DHT namespace: the first path segment of every key this module handles. */
export const RECORD_NAMESPACE = 'xenos';
export const MAX_RECORD_BYTES = 16 * 1024;
/** The longest a record may be valid for (expiresAt - issuedAt): bounds how old a replayed record can be. */
export const MAX_RECORD_LIFETIME_MS = 60 * 60_000;
/** How far in the future a record's issuedAt may be (the publisher's clock may be ahead of ours). */
export const MAX_RECORD_SKEW_MS = 60_000;
/** A record published without a ttl lives this long. */
export const DEFAULT_RECORD_TTL_MS = 10 * 60_000;
export const SEQ_FILE = 'p2p.seq';
export const RECORDS_REFUSED_METRIC = 'xenos_dht_records_refused_total';
export const RECORD_REFUSAL_REASONS = [
  'oversized',
  'malformed',
  'key',
  'wrong_signer',
  'forged',
  'lifetime',
  'not_yet_valid',
  'expired',
  'stale',
] as const;
export type RecordRefusalReason = (typeof RECORD_REFUSAL_REASONS)[number];

/** A counter of the records this node's validator refused, by reason. */
export function recordRefusalCounter(log?: Log): RefusalCounter<RecordRefusalReason> {
  return new RefusalCounter({
    name: RECORDS_REFUSED_METRIC,
    help: 'DHT records (/xenos/...) refused by this node: put by a peer, or about to be put by this node.',
    reasons: RECORD_REFUSAL_REASONS,
    log,
  });
}
const SIGNING_DOMAIN = new TextEncoder().encode('/xenos/record/1\n');

export type RecordKind = 'host' | 'instance';

export interface RecordBody<P = unknown> {
  v: 1;
  kind: RecordKind;
  key: string;
  /** Monotonic per publisher: a newer record for a key always has a higher seq. */
  seq: number;
  /** ms since the epoch. */
  issuedAt: number;
  /** ms since the epoch; the record is invalid from then on. */
  expiresAt?: number;
  payload: P;
  peerId: string;
}

// Kubernetes-style names: a DNS label for the namespace, a DNS subdomain for the name.
const LABEL = DNS1123_LABEL_FRAGMENT;
const SUBDOMAIN = DNS1123_SUBDOMAIN_FRAGMENT;
const PEER_ID = '[1-9A-HJ-NP-Za-km-z]{40,60}';
const HOST_KEY = new RegExp(`^/${RECORD_NAMESPACE}/host/(${PEER_ID})$`);
const INSTANCE_KEY = new RegExp(`^/${RECORD_NAMESPACE}/inst/(${PEER_ID})/(${LABEL})/(${SUBDOMAIN})$`);

export function hostRecordKey(peerId: string): string {
  return `/${RECORD_NAMESPACE}/host/${peerId}`;
}

export function instanceRecordKey(peerId: string, namespace: string, name: string): string {
  return `/${RECORD_NAMESPACE}/inst/${peerId}/${namespace}/${name}`;
}

/** The kind and owning peer a key names, or undefined when the key is not a valid xenos record key. */
export function parseRecordKey(key: string): { kind: RecordKind; peerId: string } | undefined {
  const host = HOST_KEY.exec(key);
  if (host != null) return { kind: 'host', peerId: host[1] };
  const inst = INSTANCE_KEY.exec(key);
  if (inst != null && inst[3].length <= 253) return { kind: 'instance', peerId: inst[1] };
  return undefined;
}

/** The last instant a JavaScript Date can hold: times in records stay below it. */
const MAX_TIME_MS = 8.64e15;

const ajv = new Ajv({ allErrors: false, strict: true });
const checkEnvelope = ajv.compile<{ body: string; sig: string }>({
  type: 'object',
  required: ['body', 'sig'],
  additionalProperties: false,
  properties: {
    body: { type: 'string', maxLength: MAX_RECORD_BYTES },
    sig: { type: 'string', pattern: '^[A-Za-z0-9_-]{86}$' },
  },
});
const checkBody = ajv.compile<RecordBody>({
  type: 'object',
  required: ['v', 'kind', 'key', 'seq', 'issuedAt', 'payload', 'peerId'],
  additionalProperties: false,
  properties: {
    v: { const: 1 },
    kind: { enum: ['host', 'instance'] },
    key: { type: 'string', maxLength: 512 },
    seq: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    issuedAt: { type: 'integer', minimum: 0, maximum: MAX_TIME_MS },
    expiresAt: { type: 'integer', minimum: 0, maximum: MAX_TIME_MS },
    payload: {},
    peerId: { type: 'string', maxLength: 64 },
  },
});

function signingInput(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(SIGNING_DOMAIN.byteLength + body.byteLength);
  out.set(SIGNING_DOMAIN, 0);
  out.set(body, SIGNING_DOMAIN.byteLength);
  return out;
}

/** Signs `body` with `privateKey` and returns the wire bytes. Does not validate (see validateRecord). */
export async function encodeRecord(body: RecordBody, privateKey: PrivateKey): Promise<Uint8Array> {
  const bodyText = JSON.stringify(body);
  const sig = await privateKey.sign(signingInput(new TextEncoder().encode(bodyText)));
  return new TextEncoder().encode(
    JSON.stringify({ body: bodyText, sig: Buffer.from(sig).toString('base64url') }),
  );
}

/** Parses wire bytes without verifying the signature (for comparing with what a node already holds). */
function parseRecord(
  key: string,
  bytes: Uint8Array,
): { body: RecordBody; bodyText: string; sig: Uint8Array } {
  if (bytes.byteLength > MAX_RECORD_BYTES) {
    throw new InvalidRecordError(
      key,
      'oversized',
      `${bytes.byteLength} bytes, the limit is ${MAX_RECORD_BYTES}`,
    );
  }
  let envelope: unknown;
  let body: unknown;
  try {
    envelope = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err: any) {
    throw new InvalidRecordError(key, 'malformed', `envelope is not JSON (${err?.message})`);
  }
  if (!checkEnvelope(envelope))
    throw new InvalidRecordError(key, 'malformed', `envelope ${ajv.errorsText(checkEnvelope.errors)}`);
  try {
    body = JSON.parse(envelope.body);
  } catch (err: any) {
    throw new InvalidRecordError(key, 'malformed', `body is not JSON (${err?.message})`);
  }
  if (!checkBody(body))
    throw new InvalidRecordError(
      key,
      'malformed',
      `body ${ajv.errorsText(checkBody.errors, { dataVar: 'body' })}`,
    );
  return { body, bodyText: envelope.body, sig: Buffer.from(envelope.sig, 'base64url') };
}

/**
 * Fully checks a record found under DHT key `key` (size, schema, key shape, key/body match, signer, signature,
 * expiry) and returns its body. Throws InvalidRecordError with the reason.
 */
export async function verifyRecord(key: string, bytes: Uint8Array, now = Date.now()): Promise<RecordBody> {
  const { body, bodyText, sig } = parseRecord(key, bytes);
  const named = parseRecordKey(key);
  if (named == null)
    throw new InvalidRecordError(
      key,
      'key',
      'not a /xenos/host/<peerId> or /xenos/inst/<peerId>/<ns>/<name> key',
    );
  if (body.key !== key) throw new InvalidRecordError(key, 'key', `record is for key ${body.key}`);
  if (body.kind !== named.kind)
    throw new InvalidRecordError(key, 'key', `record kind ${body.kind} under a ${named.kind} key`);
  if (body.peerId !== named.peerId) {
    throw new InvalidRecordError(
      key,
      'wrong-signer',
      `signed by ${body.peerId}, but the key belongs to ${named.peerId}`,
    );
  }
  let publicKey: ReturnType<typeof peerIdFromString>['publicKey'];
  try {
    publicKey = peerIdFromString(body.peerId).publicKey;
  } catch (err: any) {
    throw new InvalidRecordError(
      key,
      'malformed',
      `peerId ${body.peerId} is not a peer ID (${err?.message})`,
    );
  }
  if (publicKey == null)
    throw new InvalidRecordError(key, 'malformed', `peerId ${body.peerId} does not embed a public key`);
  const ok = await publicKey.verify(signingInput(new TextEncoder().encode(bodyText)), sig);
  if (!ok)
    throw new InvalidRecordError(key, 'forged', `signature does not verify with the key of ${body.peerId}`);
  if (body.expiresAt == null || body.expiresAt - body.issuedAt > MAX_RECORD_LIFETIME_MS) {
    throw new InvalidRecordError(
      key,
      'lifetime',
      `a record must expire at most ${MAX_RECORD_LIFETIME_MS} ms after it is issued (issued ${body.issuedAt}, ` +
        `expires ${body.expiresAt ?? 'never'})`,
    );
  }
  if (body.issuedAt > now + MAX_RECORD_SKEW_MS) {
    throw new InvalidRecordError(
      key,
      'not-yet-valid',
      `issued at ${new Date(body.issuedAt).toISOString()}, more than ${MAX_RECORD_SKEW_MS} ms ahead of this ` +
        "host's clock; check the clocks (NTP) of both hosts",
    );
  }
  if (body.expiresAt <= now) {
    throw new InvalidRecordError(key, 'expired', `expired at ${new Date(body.expiresAt).toISOString()}`);
  }
  return body;
}

/**
 * The DHT validator for the namespace. `getStored` returns the record value this node holds for a key; a record
 * older than it (lower seq, or same seq with other bytes) is rejected so that a stale put cannot replace it.
 */
export function recordValidator(deps: {
  getStored(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Counts (and logs, rate-limited) each refusal by reason. */
  refusals?: RefusalCounter<RecordRefusalReason>;
}) {
  const check = async (key: string, keyBytes: Uint8Array, value: Uint8Array): Promise<void> => {
    const body = await verifyRecord(key, value);
    const stored = await deps.getStored(keyBytes);
    if (stored == null || Buffer.compare(stored, value) === 0) return;
    let held: RecordBody;
    try {
      held = parseRecord(key, stored).body;
    } catch {
      return; // what we hold is unreadable: anything valid replaces it
    }
    if (body.seq <= held.seq) {
      throw new InvalidRecordError(key, 'stale', `seq ${body.seq} does not replace the held seq ${held.seq}`);
    }
  };
  return async (keyBytes: Uint8Array, value: Uint8Array): Promise<void> => {
    const key = new TextDecoder().decode(keyBytes);
    try {
      await check(key, keyBytes, value);
    } catch (err) {
      if (err instanceof InvalidRecordError)
        deps.refusals?.count(err.reason.replaceAll('-', '_') as RecordRefusalReason, err.message);
      throw err;
    }
  };
}

/** The DHT selector for the namespace: the highest seq wins (then the latest issuedAt, then the first). */
export function recordSelector(keyBytes: Uint8Array, records: Uint8Array[]): number {
  const key = new TextDecoder().decode(keyBytes);
  let best = 0;
  let bestRank: [number, number] = [-1, -1];
  records.forEach((bytes, i) => {
    let rank: [number, number];
    try {
      const { body } = parseRecord(key, bytes);
      rank = [body.seq, body.issuedAt];
    } catch {
      return;
    }
    if (rank[0] > bestRank[0] || (rank[0] === bestRank[0] && rank[1] > bestRank[1])) {
      best = i;
      bestRank = rank;
    }
  });
  return best;
}
