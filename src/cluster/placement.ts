// Placement: which host runs an instance that names none. Every host computes the same answer from
// the replicated store: the live, Ready, schedulable hosts that match the instance's hostSelector,
// offer its driver and have room for it, ranked by the rendezvous hash of (instance uid, host). Only
// the top host acts: it writes the binding (spec.host = itself) and starts the domain. When two hosts'
// views disagree and both bind, the binding written last wins in the replicated store (LWW) and the
// loser's instance controller stops its copy as soon as it sees spec.host name another host.

import type { Host } from '../model/host.ts';
import { HOST, SERVICE_INSTANCE, SERVICE_TEMPLATE } from '../model/kinds.ts';
import type { ServiceInstance } from '../model/service-instance.ts';
import type { ServiceTemplate } from '../model/service-template.ts';
import { keyOf } from '../reconcile/keys.ts';
import type { Store } from '../store/store.ts';
import type { HostLiveness } from './liveness.ts';
import { rankHosts } from './rendezvous.ts';
import { allocatedBy, formatMemory, offerOf, requestOf } from './resources.ts';

export type PlacementDecision =
  | { host: string; ranked: string[] }
  | { host?: undefined; reason: 'Unschedulable'; message: string };

/** Why one host does not fit, for the Unschedulable message. */
export function unfitReason(
  host: Host,
  instance: ServiceInstance,
  template: ServiceTemplate | undefined,
  bound: ServiceInstance[],
  templateOf: (i: ServiceInstance) => ServiceTemplate | undefined,
): string | undefined {
  const name = host.metadata.name;
  if (host.spec?.unschedulable || host.spec?.drain) return `${name} is cordoned`;
  const ready = host.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready && ready.status !== 'True') return `${name} is not Ready`;
  for (const [k, v] of Object.entries(instance.spec?.hostSelector ?? {})) {
    if (host.metadata.labels?.[k] !== v) return `${name} has no label ${k}=${v}`;
  }
  const driver = instance.spec?.driver;
  const drivers = host.status?.drivers ?? (host.status?.driver ? [host.status.driver] : []);
  if (driver && !drivers.includes(driver)) return `${name} has no ${driver} driver`;
  const offer = offerOf(host.status?.allocatable);
  const used = allocatedBy(bound, templateOf);
  const want = requestOf(instance, template);
  if (used.instances + 1 > offer.instances) return `${name} is full (${offer.instances} instances)`;
  if (used.memory + want.memory > offer.memory)
    return `${name} lacks memory (${formatMemory(offer.memory - used.memory)} free)`;
  if (used.cpuMillis + want.cpuMillis > offer.cpuMillis) return `${name} lacks CPU`;
  return undefined;
}

export interface PlacementComponents {
  store: Store;
  liveness: HostLiveness;
}

export class Placement {
  readonly #store: Store;
  readonly #liveness: HostLiveness;

  constructor(components: PlacementComponents) {
    this.#store = components.store;
    this.#liveness = components.liveness;
  }

  #templateOf = (i: ServiceInstance): ServiceTemplate | undefined =>
    this.#store.get({
      kind: SERVICE_TEMPLATE.kind,
      namespace: i.metadata.namespace ?? 'default',
      name: i.spec?.templateRef?.name ?? '',
    });

  /** The host that should run `instance` (the top of the ranking), or why no host can. */
  decide(instance: ServiceInstance): PlacementDecision {
    const hosts = this.#store.list(HOST.kind).items;
    const instances = this.#store.list(SERVICE_INSTANCE.kind).items;
    const self = keyOf(instance);
    const boundTo = new Map<string, ServiceInstance[]>();
    for (const i of instances) {
      const h = i.spec?.host;
      if (!h || keyOf(i) === self) continue;
      boundTo.set(h, [...(boundTo.get(h) ?? []), i]);
    }
    const template = this.#templateOf(instance);
    const fitting: string[] = [];
    const why: string[] = [];
    for (const host of hosts) {
      const name = host.metadata.name;
      if (!this.#liveness.isLive(name)) {
        why.push(`${name} is not live`);
        continue;
      }
      const reason = unfitReason(host, instance, template, boundTo.get(name) ?? [], this.#templateOf);
      if (reason) why.push(reason);
      else fitting.push(name);
    }
    if (fitting.length === 0) {
      return {
        reason: 'Unschedulable',
        message: `no host fits ${self}: ${why.length ? why.join('; ') : 'no hosts are known yet'}`,
      };
    }
    const ranked = rankHosts(placementKey(instance), fitting);
    return { host: ranked[0], ranked };
  }
}

/** The rendezvous key of an instance: its uid (stable across renames of nothing; unique per object). */
export function placementKey(instance: ServiceInstance): string {
  return `instance/${instance.metadata.uid ?? keyOf(instance)}`;
}
