// The `--p2p HOST:PORT` value as a TCP listen multiaddr, and the addresses a node never rate-limits
// (loopback and the documentation/test ranges).

import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import { ListenAddressError } from './errors.ts';

/** Loopback and the documentation/test ranges: never rate-limited, never refused for maxConnections. */
export const DEFAULT_ALLOW = [
  '/ip4/127.0.0.0/ipcidr/8',
  '/ip6/::1/ipcidr/128',
  '/ip4/192.0.2.0/ipcidr/24',
  '/ip4/198.18.0.0/ipcidr/15',
];

/** Parses `HOST:PORT` into a TCP listen multiaddr. */
export function listenMultiaddr(value: string): Multiaddr {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim());
  const port = m == null ? Number.NaN : Number(m[3]);
  if (m == null || port > 65535) throw new ListenAddressError(value);
  if (m[1] != null) return multiaddr(`/ip6/${m[1]}/tcp/${port}`);
  const host = m[2];
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return multiaddr(`/ip4/${host}/tcp/${port}`);
  if (host === 'localhost') return multiaddr(`/ip4/127.0.0.1/tcp/${port}`);
  return multiaddr(`/dns/${host}/tcp/${port}`);
}
