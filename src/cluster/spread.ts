// Where one more of a deployment's replicas goes: the fitting host (placement's decide) that runs the
// fewest of them, never one already at `maxPerHost` — placement's ranking (image holders first, then
// rendezvous order) among equals. Used when a replica is made (controllers/servicedeployment) and when one
// is re-bound off a host that stays NotReady (controllers/host/failover.ts).

import type { ServiceInstance } from '../model/service-instance.ts';
import type { Placement } from './placement.ts';

/** The host for `instance`, given how many of its deployment's replicas each host runs; or why none fits.
 *  `prefer`: a host taken whenever it fits, even over one that runs fewer (failover: the host keeping
 *  the copy of the replica's disk layer). */
export function spreadHost(
  placement: Pick<Placement, 'decide'>,
  instance: ServiceInstance,
  perHost: ReadonlyMap<string, number>,
  maxPerHost: number | undefined,
  exclude: ReadonlyMap<string, string> = new Map(),
  prefer?: string,
): { host: string } | { message: string } {
  const full = new Map(exclude);
  if (maxPerHost !== undefined) {
    for (const [host, n] of perHost) {
      if (n >= maxPerHost && !full.has(host))
        full.set(host, `already runs ${n} of its replicas (spread.maxPerHost ${maxPerHost})`);
    }
  }
  const decision = placement.decide(instance, { exclude: full });
  if (decision.host === undefined) return { message: decision.message };
  // The fewest of this deployment's replicas first; placement's ranking among equals (a stable sort).
  const host = [...decision.ranked].sort((a, b) => (perHost.get(a) ?? 0) - (perHost.get(b) ?? 0))[0];
  return { host: prefer && decision.ranked.includes(prefer) ? prefer : host };
}
