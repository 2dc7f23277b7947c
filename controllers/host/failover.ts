// Failover: the instances of a host that has stayed NotReady for their `hostDownSeconds` (counted from the
// NotReady verdict, the Host's Ready=False transition) are re-bound to other hosts by the live host that
// marked it (the rendezvous owner of `host/<name>`, controllers/host/controller.ts). Only instances that
// ask for it move (src/cluster/failover.ts: a deployment's replicas, standalone instances with
// spec.failover); the rest stay bound to their host, Ready=Unknown, until it comes back.
//
// A re-bind is the same object — same name, same uid — with a new `spec.host`, so nothing stays bound to
// the dead host; the store clears the old host's status in the same write (the write policy's owner
// change), and the new host starts the domain — from the copy of its disk layer when the instance asks for
// copies (failover.copyEverySeconds) and the host keeping the last one is live and fits, as it is then
// chosen; otherwise from the template's image — and says which (FailedOver). The
// write also raises the instance's fencing token (`xenos.io/failover-epoch`): a domain records the epoch it
// was started under, and a host coming back stops every copy whose instance is bound elsewhere or has moved
// on to a newer epoch — after it has caught up with its peers and before it serves (ServiceInstance
// controller). A singleton is re-bound only by a side of the cluster that sees more than half of the hosts
// live; a host that sees half or fewer stops its singleton copies itself.

import { failoverEpoch, failoverHost, failoverOf } from '../../src/cluster/failover.ts';
import type { HostLiveness } from '../../src/cluster/liveness.ts';
import type { Placement } from '../../src/cluster/placement.ts';
import type { Log } from '../../src/log/logger.ts';
import { SERVICE_INSTANCE } from '../../src/model/kinds.ts';
import {
  FAILED_OVER_FROM_ANNOTATION,
  FAILOVER_EPOCH_ANNOTATION,
  type ServiceInstance,
} from '../../src/model/service-instance.ts';
import { keyOf } from '../../src/reconcile/keys.ts';
import type { Store } from '../../src/store/store.ts';

export interface FailoverComponents {
  store: Store;
  placement: Pick<Placement, 'decide'>;
  liveness: Pick<HostLiveness, 'quorum'>;
  log: Log;
  now?: () => number;
}

/** What one pass over a NotReady host's instances did, and when the next is due. */
export interface FailoverPass {
  moved: { instance: string; to: string }[];
  /** Milliseconds until the next instance is due (or a refused one is worth trying again); undefined when
   *  nothing of the host's is left to fail over. */
  nextInMs?: number;
}

/** How long a refused re-bind (no host fits, no quorum, a write conflict) waits before the next try. */
export const FAILOVER_RETRY_MS = 5_000;

/** Re-binds the instances of `dead` (NotReady since `since`, ms) whose hostDownSeconds have passed. */
export function failOver(c: FailoverComponents, dead: string, since: number): FailoverPass {
  const now = (c.now ?? Date.now)();
  const pass: FailoverPass = { moved: [] };
  const later = (ms: number) => {
    pass.nextInMs = Math.min(pass.nextInMs ?? ms, ms);
  };
  for (const instance of c.store.list(SERVICE_INSTANCE.kind).items) {
    if (instance.spec?.host !== dead || instance.metadata.deletionTimestamp) continue;
    const policy = failoverOf(c.store, instance);
    if (!policy) continue;
    const key = keyOf(instance);
    const due = since + policy.hostDownSeconds * 1000;
    if (now < due) {
      later(due - now);
      continue;
    }
    if (policy.singleton) {
      const { has, live, known } = c.liveness.quorum();
      if (!has) {
        c.log.warn(
          { instance: key, host: dead },
          `instance ${key} is a singleton: not re-bound off ${dead}, as only ${live} of ${known} hosts are live here (a majority is needed)`,
        );
        later(FAILOVER_RETRY_MS);
        continue;
      }
    }
    const choice = failoverHost(c, instance, dead, policy.deployment, {
      prefer: instance.status?.layerCopy?.host,
    });
    if (!('host' in choice)) {
      c.log.warn(
        { instance: key, host: dead },
        `instance ${key}: cannot fail over off ${dead}: ${choice.message}`,
      );
      later(FAILOVER_RETRY_MS);
      continue;
    }
    const epoch = failoverEpoch(instance) + 1;
    try {
      c.store.update<ServiceInstance>({
        ...instance,
        metadata: {
          ...instance.metadata,
          annotations: {
            ...instance.metadata.annotations,
            [FAILOVER_EPOCH_ANNOTATION]: String(epoch),
            [FAILED_OVER_FROM_ANNOTATION]: `${dead} ${new Date(now).toISOString()}`,
          },
        },
        spec: { ...instance.spec!, host: choice.host },
      });
    } catch (err) {
      // Changed meanwhile (a user's edit, a deletion): looked at again at the next pass.
      c.log.warn(
        { err, instance: key },
        `instance ${key}: re-binding it to ${choice.host} failed: ${(err as Error).message}`,
      );
      later(FAILOVER_RETRY_MS);
      continue;
    }
    c.log.info(
      { instance: key, host: dead, to: choice.host, epoch },
      `instance ${key}: failed over from ${dead} (NotReady for ${Math.round((now - since) / 1000)} s, ${policy.from} allows ${policy.hostDownSeconds} s) to ${choice.host}, epoch ${epoch}`,
    );
    pass.moved.push({ instance: key, to: choice.host });
  }
  return pass;
}
