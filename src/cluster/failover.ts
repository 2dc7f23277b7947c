// Which instances fail over, and how: a deployment's replicas by the deployment's `spec.failover`, a
// standalone instance by its own `spec.failover` (the same shape and defaults); any other instance stays
// bound to its host whatever happens to it (it was pinned there, or its user asked for nothing else).
// Read by the Host controller (which re-binds the instances of a host that stays NotReady) and by the
// ServiceInstance controller (which fences a returning host's copies until it has caught up).

import { SERVICE_DEPLOYMENT, SERVICE_INSTANCE } from '../model/kinds.ts';
import type { OwnerReference } from '../model/object.ts';
import {
  FAILOVER_EPOCH_ANNOTATION,
  type FailoverSpec,
  type ServiceInstance,
} from '../model/service-instance.ts';
import type { Store } from '../store/store.ts';
import type { Placement } from './placement.ts';
import { spreadHost } from './spread.ts';

export const DEFAULT_HOST_DOWN_SECONDS = 30;

/** An instance's failover, defaults filled in, and whose it is. */
export interface FailoverPolicy {
  hostDownSeconds: number;
  singleton: boolean;
  /** `ServiceDeployment web` or `spec.failover`: where the policy was read from, for messages. */
  from: string;
  /** The deployment that owns the instance, when it is a replica (its spread applies to the new host). */
  deployment?: string;
  /** How often a copy of its disk layer goes to another host; undefined: never. */
  copyEverySeconds?: number;
}

/** The controlling ServiceDeployment's reference, when `instance` is one of its replicas. */
export function deploymentOf(instance: ServiceInstance): OwnerReference | undefined {
  return instance.metadata.ownerReferences?.find((r) => r.controller && r.kind === SERVICE_DEPLOYMENT.kind);
}

/** How `instance` fails over, or undefined when it does not (no policy, or `enabled: false`). */
export function failoverOf(store: Pick<Store, 'get'>, instance: ServiceInstance): FailoverPolicy | undefined {
  const owner = deploymentOf(instance);
  const deployment = owner?.name;
  let spec: FailoverSpec | undefined;
  let from: string;
  if (deployment) {
    const d = store.get({
      kind: SERVICE_DEPLOYMENT.kind,
      namespace: instance.metadata.namespace ?? 'default',
      name: deployment,
    });
    // A replica whose deployment is gone (or was replaced) is being garbage-collected: it stays put.
    if (!d || d.metadata.uid !== owner.uid) return undefined;
    spec = d.spec?.failover ?? {};
    from = `ServiceDeployment ${deployment}`;
  } else {
    spec = instance.spec?.failover;
    if (!spec) return undefined;
    from = 'spec.failover';
  }
  if (spec.enabled === false) return undefined;
  return {
    hostDownSeconds: spec.hostDownSeconds ?? DEFAULT_HOST_DOWN_SECONDS,
    singleton: spec.singleton === true,
    from,
    ...(deployment ? { deployment } : {}),
    ...(spec.copyEverySeconds ? { copyEverySeconds: spec.copyEverySeconds } : {}),
  };
}

/** The instance's fencing token: how many times it was failed over (0: never). */
export function failoverEpoch(instance: ServiceInstance): number {
  const raw = instance.metadata.annotations?.[FAILOVER_EPOCH_ANNOTATION];
  const n = raw === undefined ? 0 : Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

export interface FailoverPlacement {
  store: Pick<Store, 'get' | 'list'>;
  placement: Pick<Placement, 'decide'>;
}

/** Where each of `instances` (bound to `from`) would go if `from` died now, or why nowhere: one after
 *  another, as a failover pass takes them, each replica counting the ones planned before it against its
 *  deployment's spread — so the copies of two replicas of one host are not both kept on a host with room
 *  for one. Keyed by uid; instances that do not fail over are left out. Each namespace's instances are
 *  listed from the store once for the whole plan, not once per instance. */
export function failoverPlan(
  c: FailoverPlacement,
  from: string,
  instances: Iterable<ServiceInstance>,
): Map<string, { host: string } | { message: string }> {
  const planned = new Map<string, string>();
  const plan = new Map<string, { host: string } | { message: string }>();
  const lists = new Map<string, readonly ServiceInstance[]>();
  const listed = (namespace: string): readonly ServiceInstance[] => {
    let items = lists.get(namespace);
    if (!items) {
      items = c.store.list(SERVICE_INSTANCE.kind, { namespace }).items;
      lists.set(namespace, items);
    }
    return items;
  };
  for (const i of instances) {
    const policy = failoverOf(c.store, i);
    if (!policy) continue;
    const choice = failoverHost(c, i, from, policy.deployment, {
      planned,
      ...(policy.deployment ? { listed: listed(i.metadata.namespace ?? 'default') } : {}),
    });
    plan.set(i.metadata.uid ?? '', choice);
    if ('host' in choice) planned.set(i.metadata.uid ?? '', choice.host);
  }
  return plan;
}

/** What failoverHost may be told besides the instance and the host it leaves. */
export interface FailoverHostOptions {
  /** The host keeping the copy of the instance's disk layer: taken first, when it fits. */
  prefer?: string | undefined;
  /** The hosts other instances of `from` are planned to go to (by uid; failoverPlan). */
  planned?: ReadonlyMap<string, string>;
  /** The instances of the instance's namespace, already listed (failoverPlan lists them once for all);
   *  undefined: listed here. */
  listed?: readonly ServiceInstance[];
}

/** The host that takes `instance` off `from` (a host that stays NotReady; for the failover copies, the host
 *  that runs it, as if it died now): a replica within its deployment's spread, any other where placement
 *  puts it — `prefer` first, when it fits. */
export function failoverHost(
  c: FailoverPlacement,
  instance: ServiceInstance,
  from: string,
  deployment: string | undefined,
  options: FailoverHostOptions = {},
): { host: string } | { message: string } {
  const { prefer, planned } = options;
  const exclude = new Map([[from, 'is the host it fails over from']]);
  if (!deployment) {
    const decision = c.placement.decide(instance, { exclude });
    if (decision.host === undefined) return { message: decision.message };
    return { host: prefer && decision.ranked.includes(prefer) ? prefer : decision.host };
  }
  const namespace = instance.metadata.namespace ?? 'default';
  const d = c.store.get({ kind: SERVICE_DEPLOYMENT.kind, namespace, name: deployment });
  const owner = deploymentOf(instance)?.uid;
  const perHost = new Map<string, number>();
  const listed = options.listed ?? c.store.list(SERVICE_INSTANCE.kind, { namespace }).items;
  for (const r of listed) {
    if (
      r.metadata.uid === instance.metadata.uid ||
      r.metadata.deletionTimestamp ||
      deploymentOf(r)?.uid !== owner
    )
      continue;
    const host = planned?.get(r.metadata.uid ?? '') ?? r.spec?.host;
    if (host && host !== from) perHost.set(host, (perHost.get(host) ?? 0) + 1);
  }
  return spreadHost(c.placement, instance, perHost, d?.spec?.spread?.maxPerHost, exclude, prefer);
}
