// The host's persistent libp2p identity: an Ed25519 private key in DATA_DIR/p2p.key (libp2p protobuf
// encoding, mode 0600), created on first start. The peer ID derived from it names the host in the cluster and in
// the keys of the records it signs, so it must survive restarts.

import { chmod, mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { PeerKeyError } from './errors.ts';

export const PEER_KEY_FILE = 'p2p.key';

/** Reads the Ed25519 key at `file`, or creates one there (0600) if the file does not exist. */
export async function loadOrCreatePeerKey(
  file: string,
): Promise<{ privateKey: PrivateKey; created: boolean }> {
  let bytes: Uint8Array | undefined;
  try {
    bytes = await readFile(file);
  } catch (err: any) {
    if (err?.code !== 'ENOENT') throw new PeerKeyError(file, `cannot read (${err?.message})`);
  }
  if (bytes != null) return { privateKey: decode(file, bytes), created: false };

  await mkdir(dirname(file), { recursive: true });
  const privateKey = await generateKeyPair('Ed25519');
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, 'wx', 0o600);
  } catch (err: any) {
    // Another process created it between our read and our create: use theirs.
    if (err?.code === 'EEXIST') return { privateKey: decode(file, await readFile(file)), created: false };
    throw new PeerKeyError(file, `cannot create (${err?.message})`);
  }
  try {
    await handle.writeFile(privateKeyToProtobuf(privateKey));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await chmod(file, 0o600);
  return { privateKey, created: true };
}

function decode(file: string, bytes: Uint8Array): PrivateKey {
  let key: PrivateKey;
  try {
    key = privateKeyFromProtobuf(bytes);
  } catch (err: any) {
    throw new PeerKeyError(file, `not a libp2p private key (${err?.message})`);
  }
  if (key.type !== 'Ed25519') throw new PeerKeyError(file, `key type is ${key.type}, expected Ed25519`);
  return key;
}
