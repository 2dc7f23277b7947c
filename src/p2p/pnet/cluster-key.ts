// The cluster key: a 32-byte pre-shared key in libp2p's swarm.key v1 file format (the format of
// @libp2p/pnet and go-libp2p/IPFS private networks). Only hosts holding it can open connections to each other.
//
//   /key/swarm/psk/1.0.0/
//   /base16/
//   <64 hex digits>

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ClusterKeyError } from '../errors.ts';

const HEADER = '/key/swarm/psk/1.0.0/';
const CODEC = '/base16/';
/** The key's length in bytes (256 bits). */
const KEY_LENGTH = 32;

export interface ClusterKey {
  /** The whole swarm.key file, as the protector takes it (the file `@libp2p/pnet`'s `preSharedKey` takes). */
  readonly swarmKey: Uint8Array;
  /** The decoded 32-byte key. */
  readonly psk: Uint8Array;
}

/** Decodes a swarm.key v1 file; `where` names it in errors. Throws ClusterKeyError. */
export function parseClusterKey(bytes: Uint8Array, where = 'swarm key'): ClusterKey {
  const lines = new TextDecoder().decode(bytes).split(/\r\n|\r|\n/);
  if (lines[0] !== HEADER)
    throw new ClusterKeyError(where, `line 1 must be ${HEADER}, found ${JSON.stringify(lines[0])}`);
  if (lines[1] !== CODEC)
    throw new ClusterKeyError(where, `line 2 must be ${CODEC}, found ${JSON.stringify(lines[1])}`);
  const hex = (lines[2] ?? '').trim();
  if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== KEY_LENGTH * 2) {
    throw new ClusterKeyError(
      where,
      `line 3 must be ${KEY_LENGTH * 2} hex digits, found ${hex.length} characters`,
    );
  }
  if (lines.slice(3).some((l) => l.trim() !== ''))
    throw new ClusterKeyError(where, 'unexpected text after line 3');
  return { swarmKey: bytes, psk: Uint8Array.from(Buffer.from(hex, 'hex')) };
}

/** Reads and decodes the cluster key at `file`. Throws ClusterKeyError when missing or malformed. */
export async function loadClusterKey(file: string): Promise<ClusterKey> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err: any) {
    throw new ClusterKeyError(
      file,
      err?.code === 'ENOENT' ? 'file not found' : `cannot read (${err?.message})`,
    );
  }
  return parseClusterKey(bytes, file);
}

/**
 * Loads the cluster key at `file`, or creates a new random one there (mode 0600) when the file does not exist.
 * An existing file is never overwritten. Returns the key and whether it was created.
 */
export async function createClusterKey(file: string): Promise<ClusterKey & { created: boolean }> {
  await mkdir(dirname(file), { recursive: true });
  // The two header lines and 64 hex digits, no final newline, as @libp2p/pnet's generateKey writes it (the
  // tests check that its preSharedKey takes ours).
  const bytes = new TextEncoder().encode(`${HEADER}\n${CODEC}\n${randomBytes(KEY_LENGTH).toString('hex')}`);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, 'wx', 0o600);
  } catch (err: any) {
    if (err?.code === 'EEXIST') return { ...(await loadClusterKey(file)), created: false };
    throw new ClusterKeyError(file, `cannot create (${err?.message})`);
  }
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await chmod(file, 0o600);
  return { ...parseClusterKey(bytes, file), created: true };
}
