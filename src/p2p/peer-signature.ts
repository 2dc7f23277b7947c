// Ed25519 signatures with a host's libp2p key, synchronous through node:crypto (no promise per message:
// the membership protocol signs and checks small statements on its hot path, its simulation runs a
// thousand hosts on virtual time, and the store signs and checks every row part — src/store/row-proof.ts).
// A peer id embeds its Ed25519 public key, so a signature is checked against the peer id alone; public
// keys are cached.

import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { peerIdFromString } from '@libp2p/peer-id';

export interface PeerSigner {
  readonly peerId: string;
  sign(data: Uint8Array): Uint8Array;
}

/** A signer from a libp2p Ed25519 private key (`raw`: the 32-byte seed, then the public key). */
export function peerSigner(key: { type: string; raw: Uint8Array }, peerId: string): PeerSigner {
  if (key.type !== 'Ed25519') throw new TypeError(`peer signer: the key is ${key.type}, not Ed25519`);
  return peerSignerFromSeed(key.raw.subarray(0, 32), peerId);
}

/** A signer from the 32-byte Ed25519 seed of `peerId`'s key; throws when the seed is not that key's. */
export function peerSignerFromSeed(seed: Uint8Array, peerId: string): PeerSigner {
  if (seed.byteLength !== 32) throw new TypeError('peer signer: an Ed25519 seed is 32 bytes');
  const publicKey = publicKeyOf(peerId);
  const privateKey = createPrivateKey({
    format: 'jwk',
    key: {
      kty: 'OKP',
      crv: 'Ed25519',
      d: Buffer.from(seed).toString('base64url'),
      x: publicKey.export({ format: 'jwk' }).x as string,
    },
  });
  const probe = Buffer.from('xenos/peer-signer/probe');
  if (!verify(null, probe, publicKey, sign(null, probe, privateKey))) {
    throw new TypeError(`peer signer: the private key does not belong to peer ${peerId}`);
  }
  return { peerId, sign: (data) => sign(null, data, privateKey) };
}

/** Whether `sig` is `peerId`'s Ed25519 signature of `data` (false for anything malformed). */
export function verifyPeerSignature(peerId: string, data: Uint8Array, sig: Uint8Array): boolean {
  if (sig.byteLength !== 64) return false;
  let key: KeyObject;
  try {
    key = publicKeyOf(peerId);
  } catch {
    return false;
  }
  return verify(null, data, key, sig);
}

const publicKeys = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 8192;

/** The Ed25519 public key a peer id embeds (cached). Throws for anything that is not an Ed25519 peer id. */
function publicKeyOf(peerId: string): KeyObject {
  let key = publicKeys.get(peerId);
  if (key) return key;
  const raw = peerIdFromString(peerId).publicKey;
  if (raw?.type !== 'Ed25519') throw new TypeError(`${peerId} is not an Ed25519 peer id`);
  key = createPublicKey({
    format: 'jwk',
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw.raw).toString('base64url') },
  });
  if (publicKeys.size >= MAX_CACHED_KEYS) publicKeys.clear();
  publicKeys.set(peerId, key);
  return key;
}
