// Proof of who wrote a version of a stored object's part: an Ed25519 signature by the writer's libp2p key over
// a statement of the part (its key, its version, a hash of its content). A proof travels with the row through
// every host that forwards it, so a receiver checks the writer of each part whoever relayed it.
//
// Statements (the bytes signed, after the domain tag `xenos/row/1\n`; JSON arrays):
//   main part   ["main", kind, namespace, name, hlc, deleted (0|1), sha256(canonical metadata+spec+…)]
//   status part ["status", kind, namespace, name, hlc, sha256(stable), sha256(volatile), base | null]
// The status is hashed in two halves: `volatile` is its `phase` and its `Ready` condition, `stable` is the
// rest. A verdict — another host saying a silent host (or its instance) is not Ready — changes only the
// volatile half of a status the owner signed, and carries the owner's proof of that status as `base`
// ([hlc, writer, proof, sha256(volatile of the base)]), so a receiver checks that everything but the
// verdict is what the owner wrote.
//
// A proof is the text `<peerId>.<base64url signature>`. Hashes are over canonical JSON (object keys sorted,
// JSON.stringify's rules otherwise), so they do not depend on key order after a JSON round trip.

import { createHash } from 'node:crypto';
import type { XObject } from '../model/object.ts';
import { type PeerSigner, peerSignerFromSeed, verifyPeerSignature } from '../p2p/peer-signature.ts';

const DOMAIN = Buffer.from('xenos/row/1\n');
const READY = 'Ready';

/** A part version's proof: `<peerId>.<base64url Ed25519 signature>`; '' when unsigned. */
export type Proof = string;

/** The owner's status a verdict was written over (see the file comment). */
export interface StatusBase {
  hlc: string;
  writer: string;
  proof: Proof;
  /** sha256 (base64url) of the base status's volatile half. */
  volatile: string;
}

export interface PartKey {
  kind: string;
  namespace: string;
  name: string;
}

/** JSON with object keys sorted at every level (JSON.stringify's rules for undefined and the rest). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const keys = Object.keys(value).sort();
  const parts: string[] = [];
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

export function hashOf(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('base64url');
}

/** The main part of an object: everything but its status (and its per-host resourceVersion). */
export function mainHash(obj: XObject): string {
  const { status: _, ...main } = obj;
  const { resourceVersion: __, ...metadata } = main.metadata ?? {};
  return hashOf({ ...main, metadata });
}

/** A status split into the half a verdict may change (phase, the Ready condition) and the rest. */
export function statusHalves(status: unknown): { stable: unknown; volatile: unknown } {
  if (status === null || typeof status !== 'object' || Array.isArray(status))
    return { stable: status ?? null, volatile: null };
  const { phase, conditions, ...rest } = status as Record<string, unknown>;
  if (!Array.isArray(conditions)) {
    const stable = conditions === undefined ? rest : { ...rest, conditions };
    return { stable, volatile: { phase: phase ?? null, ready: null } };
  }
  const ready = conditions.find((c) => (c as { type?: unknown } | null)?.type === READY);
  const others = conditions.filter((c) => c !== ready);
  // No other condition: the same stable half whether the list is empty, absent or holds only Ready.
  const stable = others.length > 0 ? { ...rest, conditions: others } : rest;
  return { stable, volatile: { phase: phase ?? null, ready: ready ?? null } };
}

export function statusHashes(status: unknown): { stable: string; volatile: string } {
  const { stable, volatile } = statusHalves(status);
  return { stable: hashOf(stable), volatile: hashOf(volatile) };
}

export function mainStatement(key: PartKey, hlc: string, deleted: boolean, hash: string): Uint8Array {
  return statement(['main', key.kind, key.namespace, key.name, hlc, deleted ? 1 : 0, hash]);
}

export function statusStatement(
  key: PartKey,
  hlc: string,
  hashes: { stable: string; volatile: string },
  base: StatusBase | undefined,
): Uint8Array {
  const b = base ? [base.hlc, base.writer, base.proof, base.volatile] : null;
  return statement(['status', key.kind, key.namespace, key.name, hlc, hashes.stable, hashes.volatile, b]);
}

function statement(fields: unknown[]): Uint8Array {
  return Buffer.concat([DOMAIN, Buffer.from(JSON.stringify(fields))]);
}

/** Signs statements with this host's Ed25519 key (its libp2p identity). */
export class RowSigner {
  readonly peerId: string;
  readonly #signer: PeerSigner;

  /** `seed`: the 32-byte Ed25519 private key; `peerId`: the libp2p peer id of its public key. Throws when
   *  the seed is not that peer's key (it would sign what nobody can verify). */
  constructor(init: { seed: Uint8Array; peerId: string }) {
    this.#signer = peerSignerFromSeed(init.seed, init.peerId);
    this.peerId = init.peerId;
  }

  /** From a libp2p Ed25519 private key (`raw`: the 32-byte seed followed by the public key). */
  static fromLibp2pKey(key: { type: string; raw: Uint8Array }, peerId: string): RowSigner {
    if (key.type !== 'Ed25519') throw new TypeError(`row signer: the key is ${key.type}, not Ed25519`);
    return new RowSigner({ seed: key.raw.subarray(0, 32), peerId });
  }

  sign(stmt: Uint8Array): Proof {
    return `${this.peerId}.${Buffer.from(this.#signer.sign(stmt)).toString('base64url')}`;
  }
}

/** The peer id that signed `proof` (not verified), or undefined when it is not shaped like a proof. */
export function proofSigner(proof: Proof): string | undefined {
  const dot = proof.indexOf('.');
  return dot > 0 ? proof.slice(0, dot) : undefined;
}

/** Whether `proof` is a valid signature of `stmt` by the peer it names (and, given, by `peerId`). */
export function verifyProof(stmt: Uint8Array, proof: Proof, peerId?: string): boolean {
  const dot = proof.indexOf('.');
  if (dot <= 0) return false;
  const signer = proof.slice(0, dot);
  if (peerId !== undefined && signer !== peerId) return false;
  return verifyPeerSignature(signer, stmt, Buffer.from(proof.slice(dot + 1), 'base64url'));
}
