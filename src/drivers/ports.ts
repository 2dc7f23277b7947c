// Host port allocation for domain ports: a free TCP/UDP port per template port per domain, kept across
// restarts of the domain while it stays free. Shared by the process driver and QEMU's user-mode hostfwd.

import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { DomainPort } from './driver.ts';
import { PortAllocationError } from './errors.ts';

/** Binds `port` (0 = any) on all addresses to prove it is free; resolves the bound port, or undefined if taken. */
export function tryBind(port: number, protocol: 'TCP' | 'UDP'): Promise<number | undefined> {
  return new Promise((resolve) => {
    if (protocol === 'UDP') {
      const socket = createSocket('udp4');
      socket.once('error', () => {
        socket.close();
        resolve(undefined);
      });
      socket.bind(port, () => {
        const bound = socket.address().port;
        socket.close(() => resolve(bound));
      });
      return;
    }
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : undefined;
      server.close(() => resolve(bound));
    });
  });
}

/**
 * Host ports for `ports`: the `previous` allocation where that port is still free, a fresh one otherwise.
 * `reserved` holds ports already given to other domains of this host (they may not be listening yet).
 */
export async function allocatePorts(
  domainId: string,
  ports: DomainPort[],
  previous: Record<string, number> | undefined,
  reserved: Set<number>,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const p of ports) {
    const before = previous?.[p.name];
    if (before !== undefined && !reserved.has(before) && (await tryBind(before, p.protocol)) === before) {
      out[p.name] = before;
      reserved.add(before);
      continue;
    }
    let found: number | undefined;
    for (let attempt = 0; attempt < 20 && found === undefined; attempt++) {
      const candidate = await tryBind(0, p.protocol);
      if (candidate !== undefined && !reserved.has(candidate)) found = candidate;
    }
    if (found === undefined) {
      throw new PortAllocationError(
        domainId,
        p.name,
        'no free host port after 20 attempts; is the ephemeral range exhausted?',
      );
    }
    out[p.name] = found;
    reserved.add(found);
  }
  return out;
}
