// Host port allocation for domain ports: a free TCP/UDP port per template port per domain, kept across
// restarts of the domain while it stays free. Shared by the process driver and QEMU's user-mode hostfwd.
// Two checks: the port can be bound now (nothing listens on it), and a lease says no other domain on this
// machine has it (`take`, see host-leases.ts: atomic across every xenosd on the machine, as `npm start`
// runs several). Within one driver, allocations must not overlap (the caller serialises them), so a port
// handed out but not yet listened on is never handed out twice. What no check can prevent: a process that
// is not a Xenos domain binding the port between the check and the service's own bind; the service then
// fails to listen, the domain crashes and its next start gets another port.

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

/** Takes a machine-wide lease on a port for the domain; false when another domain holds it. */
export type PortLease = (port: number, protocol: 'TCP' | 'UDP') => boolean;

/**
 * Host ports for `ports`: the `previous` allocation where that port is still free, a fresh one otherwise.
 * `reserved` holds ports already given to other domains of this driver (they may not be listening yet);
 * `take` leases a port machine-wide (absent: no other xenosd is considered).
 */
export async function allocatePorts(
  domainId: string,
  ports: DomainPort[],
  previous: Record<string, number> | undefined,
  reserved: Set<number>,
  take: PortLease = () => true,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const usable = (port: number | undefined, protocol: 'TCP' | 'UDP') =>
    port !== undefined && !reserved.has(port) && take(port, protocol);
  for (const p of ports) {
    const before = previous?.[p.name];
    if (
      before !== undefined &&
      !reserved.has(before) &&
      (await tryBind(before, p.protocol)) === before &&
      usable(before, p.protocol)
    ) {
      out[p.name] = before;
      reserved.add(before);
      continue;
    }
    let found: number | undefined;
    for (let attempt = 0; attempt < 20 && found === undefined; attempt++) {
      const candidate = await tryBind(0, p.protocol);
      if (usable(candidate, p.protocol)) found = candidate;
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
