// Anti-entropy digests: every row (tombstones included) falls in one of B buckets by a hash of its
// key; a bucket's digest is a hash over its rows' (key, hlc, statusHlc) in key order. Two hosts
// compare B short hashes, then exchange versions only for the buckets that differ, so a sync of
// hosts that agree costs one small round trip however many objects there are.

import { createHash } from 'node:crypto';
import type { RowVersion } from '../sqlite-store.ts';

export const DEFAULT_BUCKETS = 128;

export interface Digest {
  /** Per bucket: 16 hex digits of SHA-256 over its versions ('' for an empty bucket). */
  hashes: string[];
  /** Per bucket: its versions, in key order. */
  versions: RowVersion[][];
}

export function keyText(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

/** The bucket of a key: FNV-1a (32 bit) of its text, modulo the bucket count. */
export function bucketOf(key: string, buckets: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % buckets;
}

/** Builds the digest of `versions`, which must come in key order (as the store lists them);
 *  versions for which `skip` holds (expired tombstones) are left out. */
export function buildDigest(
  versions: Iterable<RowVersion>,
  buckets: number,
  skip: (v: RowVersion) => boolean,
): Digest {
  const lists: RowVersion[][] = Array.from({ length: buckets }, () => []);
  for (const v of versions) {
    if (skip(v)) continue;
    lists[bucketOf(keyText(v.kind, v.namespace, v.name), buckets)].push(v);
  }
  const hashes = lists.map((list) => {
    if (list.length === 0) return '';
    const h = createHash('sha256');
    for (const v of list) h.update(`${v.kind}\0${v.namespace}\0${v.name}\0${v.hlc}\0${v.statusHlc}\n`);
    return h.digest('hex').slice(0, 16);
  });
  return { hashes, versions: lists };
}
