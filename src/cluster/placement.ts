// Placement: which host runs an instance that names none. Every host computes the same answer from
// the replicated store: the live, Ready, schedulable hosts that match the instance's hostSelector,
// offer its driver and have room for it, ranked by the rendezvous hash of (instance uid, host), with the
// hosts that already hold the template's image (Host.status.images) ahead of those that would first have
// to pull it — the fit is all-or-nothing, so among fitting hosts that is the only difference. Only
// the top host acts: it writes the binding (spec.host = itself) and starts the domain. When two hosts'
// views disagree and both bind, the binding written last wins in the replicated store (LWW) and the
// loser's instance controller stops its copy as soon as it sees spec.host name another host.
//
// A decision reads memory only: informers (src/store/informer.ts) hold the hosts, instances and
// templates, and HostAllocations keeps what each host has bound as instances come and go, so a
// decision costs O(hosts), never a list of every instance from the store.

import type { Host } from '../model/host.ts';
import { HOST, SERVICE_INSTANCE, SERVICE_TEMPLATE } from '../model/kinds.ts';
import type { ServiceInstance } from '../model/service-instance.ts';
import type { ServiceTemplate } from '../model/service-template.ts';
import { keyOf } from '../reconcile/keys.ts';
import { cacheKey, Informer } from '../store/informer.ts';
import type { Store } from '../store/store.ts';
import { HostAllocations } from './allocations.ts';
import { hostHolds, templateDigest } from './image-distribution.ts';
import type { HostLiveness } from './liveness.ts';
import { rankHosts } from './rendezvous.ts';
import { formatMemory, type Offer, offerOf, requestOf } from './resources.ts';

export type PlacementDecision =
  | { host: string; ranked: string[] }
  | { host?: undefined; reason: 'Unschedulable'; message: string };

/** Why one host does not fit, for the Unschedulable message. `used` is what the instances already bound
 *  to the host ask for (HostAllocations.allocated). */
export function unfitReason(
  host: Host,
  instance: ServiceInstance,
  template: ServiceTemplate | undefined,
  used: Offer,
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
  readonly #liveness: HostLiveness;
  /** In-memory copies of hosts, instances and templates, fed by the store's watch (started on first use). */
  readonly #hosts: Informer<typeof HOST.kind>;
  readonly #instances: Informer<typeof SERVICE_INSTANCE.kind>;
  readonly #templates: Informer<typeof SERVICE_TEMPLATE.kind>;
  readonly #allocations = new HostAllocations();

  constructor(components: PlacementComponents) {
    const { store } = components;
    this.#liveness = components.liveness;
    this.#hosts = new Informer({ store }, { kind: HOST.kind });
    this.#instances = new Informer({ store }, { kind: SERVICE_INSTANCE.kind });
    this.#templates = new Informer({ store }, { kind: SERVICE_TEMPLATE.kind });
    this.#instances.onChange((change) => this.#allocations.apply(change));
  }

  /** Starts the caches (a list each, then watch events); decide() and unplaced() do it on first use. */
  start(): void {
    this.#hosts.start();
    this.#instances.start();
    this.#templates.start();
  }

  /** Stops the caches' watches; the next use starts them again (and catches up by listing). */
  stop(): void {
    this.#hosts.stop();
    this.#instances.stop();
    this.#templates.stop();
  }

  #templateOf = (i: ServiceInstance): ServiceTemplate | undefined =>
    this.#templates.get(`${i.metadata.namespace ?? 'default'}/${i.spec?.templateRef?.name ?? ''}`);

  /** What the instances bound to `host` ask for, summed (the Host controller's status.allocated). */
  allocated(host: string): Offer {
    this.start();
    return this.#allocations.allocated(host, this.#templateOf);
  }

  /** The keys (`namespace/name`) of the instances no host is bound to yet. */
  unplaced(): string[] {
    this.start();
    const keys: string[] = [];
    for (const i of this.#instances.values()) if (!i.spec?.host) keys.push(cacheKey(i));
    return keys;
  }

  /** The host that should run `instance` (the top of the ranking), or why no host can. `exclude`: hosts
   *  that may not be picked, with why (a migration's source). */
  decide(instance: ServiceInstance, options: { exclude?: Map<string, string> } = {}): PlacementDecision {
    this.start();
    const self = keyOf(instance);
    const template = this.#templateOf(instance);
    const fitting: string[] = [];
    const why: string[] = [];
    for (const host of this.#hosts.values()) {
      const name = host.metadata.name;
      const excluded = options.exclude?.get(name);
      if (excluded) {
        why.push(`${name} ${excluded}`);
        continue;
      }
      if (!this.#liveness.isLive(name)) {
        why.push(`${name} is not live`);
        continue;
      }
      const used = this.#allocations.allocated(name, this.#templateOf, self);
      const reason = unfitReason(host, instance, template, used);
      if (reason) why.push(reason);
      else fitting.push(name);
    }
    if (fitting.length === 0) {
      return {
        reason: 'Unschedulable',
        message: `no host fits ${self}: ${why.length ? why.sort().join('; ') : 'no hosts are known yet'}`,
      };
    }
    const ranked = preferHolders(
      rankHosts(placementKey(instance), fitting),
      template && templateDigest(template),
      (name) => this.#hosts.get(name),
    );
    return { host: ranked[0], ranked };
  }
}

/** `ranked` with the hosts holding `digest` first, each group in its rendezvous order. */
export function preferHolders(
  ranked: string[],
  digest: string | undefined,
  hostNamed: (name: string) => Host | undefined,
): string[] {
  if (!digest) return ranked;
  const holders: string[] = [];
  const others: string[] = [];
  for (const name of ranked) {
    const h = hostNamed(name);
    (h !== undefined && hostHolds(h, digest) ? holders : others).push(name);
  }
  return [...holders, ...others];
}

/** The rendezvous key of an instance: its uid (stable across renames of nothing; unique per object). */
export function placementKey(instance: ServiceInstance): string {
  return `instance/${instance.metadata.uid ?? keyOf(instance)}`;
}
