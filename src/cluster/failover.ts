// Which instances fail over, and how: a deployment's replicas by the deployment's `spec.failover`, a
// standalone instance by its own `spec.failover` (the same shape and defaults); any other instance stays
// bound to its host whatever happens to it (it was pinned there, or its user asked for nothing else).
// Read by the Host controller (which re-binds the instances of a host that stays NotReady) and by the
// ServiceInstance controller (which fences a returning host's copies until it has caught up).

import { SERVICE_DEPLOYMENT } from '../model/kinds.ts';
import type { OwnerReference } from '../model/object.ts';
import {
  FAILOVER_EPOCH_ANNOTATION,
  type FailoverSpec,
  type ServiceInstance,
} from '../model/service-instance.ts';
import type { Store } from '../store/store.ts';

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
