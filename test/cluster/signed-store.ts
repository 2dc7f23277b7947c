// Stores as replicating xenosd hosts open them: each with its own Ed25519 identity (a libp2p key), signing
// what it writes and checking what it receives under the cluster's write policy.

import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { clusterRowAuthority } from '../../src/cluster/write-policy.ts';
import type { RowAuthority } from '../../src/store/row-authority.ts';
import { RowSigner } from '../../src/store/row-proof.ts';
import { openStore, type SqliteStore } from '../../src/store/sqlite-store.ts';

export const namespaced = (kind: string) => kind !== 'Host';

export interface Identity {
  privateKey: PrivateKey;
  peerId: string;
  signer: RowSigner;
}

export async function newIdentity(): Promise<Identity> {
  const privateKey = await generateKeyPair('Ed25519');
  const peerId = peerIdFromPrivateKey(privateKey).toString();
  return { privateKey, peerId, signer: RowSigner.fromLibp2pKey(privateKey, peerId) };
}

export function authorityOf(id: Identity): RowAuthority {
  return clusterRowAuthority(id.privateKey, id.peerId);
}

/** A store written as host `name` with identity `id` (in memory unless `path` is given). */
export function signedStore(
  name: string,
  id: Identity,
  opts: { path?: string; wallClock?: () => number } = {},
): SqliteStore {
  return openStore({
    path: opts.path ?? ':memory:',
    namespaced,
    writer: name,
    authority: authorityOf(id),
    wallClock: opts.wallClock,
  });
}
