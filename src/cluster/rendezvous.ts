// Rendezvous (highest-random-weight) hashing: for a key, every host ranks the same candidates the same
// way, so "the top live host acts" needs no election and no coordination. Used by placement (which host
// takes an unplaced instance) and by membership (which live host marks a silent host NotReady).

import { createHash } from 'node:crypto';

/** The weight of `host` for `key`: the first 8 bytes of sha256(key NUL host), as an unsigned integer. */
export function rendezvousWeight(key: string, host: string): bigint {
  return createHash('sha256').update(key).update('\0').update(host).digest().readBigUInt64BE(0);
}

/** `hosts` ordered best first for `key` (ties, practically impossible, broken by name). */
export function rankHosts(key: string, hosts: Iterable<string>): string[] {
  const weighted = [...new Set(hosts)].map((h) => ({ h, w: rendezvousWeight(key, h) }));
  weighted.sort((a, b) => (a.w === b.w ? (a.h < b.h ? -1 : 1) : a.w > b.w ? -1 : 1));
  return weighted.map((x) => x.h);
}

/** The host that acts for `key`, or undefined when there is none. */
export function ownerOf(key: string, hosts: Iterable<string>): string | undefined {
  return rankHosts(key, hosts)[0];
}
