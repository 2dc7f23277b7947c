// Which IP addresses an image URL may reach. A template's `spec.image.url` is written by API users and
// fetched by every host that runs the template, from inside the cluster's network: without a rule, an
// image URL is a way to make each host request its own loopback services, the cloud metadata service
// (169.254.169.254) or anything on the private network behind it, and cache the answer as an image.
// So an import refuses every address that is not public unicast — loopback, private (RFC 1918, IPv6
// unique local), link-local, carrier-grade NAT, multicast, documentation, benchmarking and reserved
// ranges, the unspecified address — unless the host allows them (`--allow-private-image-urls`).
// IPv6 forms that carry an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d,
// NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by the IPv4 address inside; Teredo, whose client
// address is hidden, and everything outside the global unicast block 2000::/3 are refused.
// The rule is applied to the addresses a name resolves to, at connect time (download.ts), so a name
// that resolves differently for the check and the connection (DNS rebinding) gains nothing.

import { isIP, isIPv4 } from 'node:net';

type Range4 = [base: number, bits: number, name: string];

const ip4 = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

/** IANA's IPv4 special-purpose ranges that are not reachable public unicast. */
const SPECIAL_V4: Range4[] = [
  [ip4(0, 0, 0, 0), 8, 'unspecified ("this network")'],
  [ip4(10, 0, 0, 0), 8, 'private'],
  [ip4(100, 64, 0, 0), 10, 'carrier-grade NAT (shared)'],
  [ip4(127, 0, 0, 0), 8, 'loopback'],
  [ip4(169, 254, 0, 0), 16, 'link-local'],
  [ip4(172, 16, 0, 0), 12, 'private'],
  [ip4(192, 0, 0, 0), 24, 'IETF protocol assignment'],
  [ip4(192, 0, 2, 0), 24, 'documentation'],
  [ip4(192, 88, 99, 0), 24, '6to4 relay (deprecated)'],
  [ip4(192, 168, 0, 0), 16, 'private'],
  [ip4(198, 18, 0, 0), 15, 'benchmarking'],
  [ip4(198, 51, 100, 0), 24, 'documentation'],
  [ip4(203, 0, 113, 0), 24, 'documentation'],
  [ip4(224, 0, 0, 0), 4, 'multicast'],
  [ip4(240, 0, 0, 0), 4, 'reserved'],
];

function v4Number(text: string): number {
  const [a, b, c, d] = text.split('.').map(Number);
  return ip4(a, b, c, d);
}

function classifyV4(n: number): string | undefined {
  for (const [base, bits, name] of SPECIAL_V4) {
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    if ((n & mask) >>> 0 === base) return name;
  }
  return undefined;
}

/** The eight 16-bit groups of an IPv6 address (which may end in dotted IPv4). */
function v6Groups(text: string): number[] {
  let s = text;
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const n = v4Number(dotted[1]);
    tail.push(n >>> 16, n & 0xffff);
    s = s.slice(0, -dotted[1].length);
    if (s.endsWith(':') && !s.endsWith('::')) s = s.slice(0, -1);
  }
  const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
  const parse = (part: string | undefined) =>
    part ? part.split(':').map((g) => Number.parseInt(g, 16)) : [];
  const left = parse(head);
  const right = [...parse(rest), ...tail];
  const fill = rest === undefined ? [] : new Array(8 - left.length - right.length).fill(0);
  return rest === undefined ? [...left, ...tail] : [...left, ...fill, ...right];
}

function classifyV6(g: number[]): string | undefined {
  const embedded = (hi: number, lo: number) => ((hi << 16) | lo) >>> 0;
  const zeroUpTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(8)) return 'unspecified';
  if (zeroUpTo(7) && g[7] === 1) return 'loopback';
  // IPv4-mapped ::ffff:a.b.c.d: the IPv4 address is what is reached.
  if (zeroUpTo(5) && g[5] === 0xffff) return classifyV4(embedded(g[6], g[7]));
  if (zeroUpTo(6)) return 'IPv4-compatible (deprecated)';
  // NAT64 64:ff9b::/96 reaches the embedded IPv4 address; 64:ff9b:1::/48 is for local use.
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) {
    return classifyV4(embedded(g[6], g[7]));
  }
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return 'NAT64 local-use';
  if (g[0] === 0x2002) {
    const inner = classifyV4(embedded(g[1], g[2]));
    return inner ? `6to4 of a ${inner} address` : undefined;
  }
  if (g[0] === 0x2001 && g[1] === 0) return 'Teredo';
  if (g[0] === 0x2001 && g[1] === 0xdb8) return 'documentation';
  if (g[0] === 0x2001 && g[1] < 0x200) return 'IETF protocol assignment';
  if (g[0] === 0x3fff && (g[1] & 0xf000) === 0) return 'documentation';
  if ((g[0] & 0xfe00) === 0xfc00) return 'unique local (private)';
  if ((g[0] & 0xffc0) === 0xfe80) return 'link-local';
  if ((g[0] & 0xffc0) === 0xfec0) return 'site-local (deprecated)';
  if ((g[0] & 0xff00) === 0xff00) return 'multicast';
  if ((g[0] & 0xe000) !== 0x2000) return 'reserved';
  return undefined;
}

/**
 * What kind of special address `address` is (`loopback`, `private`, `link-local`, …), or undefined for a
 * public unicast address. `address` is an IP literal (IPv6 with or without brackets and zone); anything
 * that is not an IP literal is `not an IP address`.
 */
export function specialAddress(address: string): string | undefined {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 0) return 'not an IP address';
  return isIPv4(bare) ? classifyV4(v4Number(bare)) : classifyV6(v6Groups(bare.toLowerCase()));
}

/** Whether an API listen host is loopback only: `localhost`, 127.0.0.0/8, ::1 (or its IPv4-mapped form). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || specialAddress(host) === 'loopback';
}
