// What an instance's status says of failover on the host that runs it: FailedOver (re-bound off a NotReady
// host: from where, when, and whether its domain here started from the copy of its disk layer or fresh),
// LayerCopied and status.layerCopy (how the last copy this host sent went, or that its driver keeps none).
// Written by the ServiceInstance reconcile's `always` step (reconcile-steps.ts), every pass.

import { failoverEpoch, failoverOf } from '../../src/cluster/failover.ts';
import type { Driver } from '../../src/drivers/driver.ts';
import { FAILED_OVER_FROM_ANNOTATION, type ServiceInstance } from '../../src/model/service-instance.ts';
import { setCondition } from '../../src/reconcile/conditions.ts';
import type { Store } from '../../src/store/store.ts';
import { FAILED_OVER, LAYER_COPIED } from './conditions.ts';
import type { InstanceLayerCopies } from './layer-copies.ts';

/** Sets FailedOver, LayerCopied and status.layerCopy of `instance` on `host`. */
export function failoverStatus(
  s: NonNullable<ServiceInstance['status']>,
  instance: ServiceInstance,
  c: { store: Store; driver: Driver; layerCopies?: InstanceLayerCopies; host: string },
  generation: number,
): void {
  const { driver, host } = c;
  const failedOver = failedOverCondition(
    instance,
    host,
    s.disk?.fromCopy ?? c.layerCopies?.restorable(instance),
  );
  if (failedOver) setCondition(s, failedOver, generation);
  if (!driver.copyLayer && failoverOf(c.store, instance)?.copyEverySeconds) {
    setCondition(
      s,
      {
        type: LAYER_COPIED,
        status: 'False',
        reason: 'CopiesUnsupported',
        message: `the ${driver.name} driver keeps no copies of its domains' disks: if host ${host} dies, this instance fails over from the template's image`,
      },
      generation,
    );
  } else layerCopyStatus(s, c.layerCopies?.lastSent(instance), generation);
}

/** What FailedOver says of an instance re-bound to `host` off a NotReady host; undefined if it never was.
 *  `copy`: the copy of its disk layer its domain here was (or is being) made from; without one, the domain
 *  starts from the template's image. */
function failedOverCondition(
  instance: ServiceInstance,
  host: string,
  copy?: { host: string; takenAt: string },
) {
  const epoch = failoverEpoch(instance);
  const from = instance.metadata.annotations?.[FAILED_OVER_FROM_ANNOTATION];
  if (epoch === 0 || !from) return undefined;
  const [dead, at] = from.split(' ');
  const what = `failed over from host ${dead} (NotReady) to ${host} at ${at ?? 'an unknown time'}, epoch ${epoch}`;
  if (copy) {
    const age = at
      ? ` (${Math.max(0, Math.round((Date.parse(at) - Date.parse(copy.takenAt)) / 1000))} s before the failover)`
      : '';
    return {
      type: FAILED_OVER,
      status: 'True' as const,
      reason: 'StartedFromCopy',
      message: `${what}: its domain started from the copy of its disk layer taken on ${copy.host} at ${copy.takenAt}${age}`,
    };
  }
  return {
    type: FAILED_OVER,
    status: 'True' as const,
    reason: 'StartedFresh',
    message: `${what}: no copy of its disk layer was kept on a live host (spec.failover.copyEverySeconds), so its domain started from the template's image`,
  };
}

/** status.layerCopy and the LayerCopied condition from how the last copy this host sent went. */
function layerCopyStatus(
  s: NonNullable<ServiceInstance['status']>,
  sent: ReturnType<InstanceLayerCopies['lastSent']>,
  generation: number,
): void {
  // Nothing to say while the first copy is under way.
  if (!sent || (!sent.copy && !sent.error)) return;
  if (sent.copy) s.layerCopy = sent.copy;
  setCondition(
    s,
    sent.error
      ? { type: LAYER_COPIED, status: 'False', reason: 'CopyFailed', message: sent.error }
      : {
          type: LAYER_COPIED,
          status: 'True',
          reason: 'Copied',
          message: `a copy of its disk layer is kept on host ${sent.copy?.host} for failover`,
        },
    generation,
  );
}
