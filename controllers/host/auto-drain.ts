// Automatic drain (xenosd --auto-drain, opt-in): a host whose health has degraded — one of its
// DEGRADED_CONDITIONS (MemoryPressure, DiskPressure, HealthCheckFailing; src/daemon/host-health.ts) True
// for longer than --auto-drain-after — cordons itself (spec.drain, with the AUTO_DRAINED_ANNOTATION saying
// when and why) and moves its instances off as `xenosctl drain` would: one ServiceMigration per instance
// bound to it, without a target (the host picks one by placement), mode Auto (live where the driver can),
// labelled xenos.io/drain=HOST. So a master moves while its host still answers, rather than failing over
// fresh once it has died. Run by the host itself at each reconcile of its own Host (controllers/host).
//
// The host stays cordoned when its health comes back, as a drained Kubernetes node does: an operator
// uncordons it (`xenosctl uncordon`). It does not drain itself again for the same degradation (a condition
// that turned True before the annotation's time); a new one drains it again. An instance whose move
// failed is tried again after DRAIN_RETRY_MS; one already moving is left to its migration.

import type { Log } from '../../src/log/logger.ts';
import { DRAIN_LABEL, drainMigration } from '../../src/model/drain.ts';
import { AUTO_DRAINED_ANNOTATION, DEGRADED_CONDITIONS, type Host } from '../../src/model/host.ts';
import { SERVICE_INSTANCE, SERVICE_MIGRATION } from '../../src/model/kinds.ts';
import type { Condition } from '../../src/model/object.ts';
import type { ServiceMigration } from '../../src/model/service-migration.ts';
import { getCondition } from '../../src/reconcile/conditions.ts';
import { keyOf } from '../../src/reconcile/keys.ts';
import type { Store } from '../../src/store/store.ts';

/** How long after a failed move an instance is tried again. */
export const DRAIN_RETRY_MS = 60_000;
/** How long each move may take (the migration's spec.timeoutSeconds). */
const MOVE_TIMEOUT_SECONDS = 600;

export interface AutoDrainComponents {
  store: Store;
  log: Log;
  now?: () => number;
}

/** What a pass did, and when the next is due (undefined: nothing to come back for). */
export interface AutoDrainPass {
  drained: boolean;
  moves: string[];
  nextInMs?: number;
}

/** The degraded condition that has held longest, if any. */
function degradation(host: Host): Condition | undefined {
  let worst: Condition | undefined;
  for (const type of DEGRADED_CONDITIONS) {
    const c = getCondition(host.status, type);
    if (c?.status !== 'True') continue;
    if (!worst || Date.parse(c.lastTransitionTime) < Date.parse(worst.lastTransitionTime)) worst = c;
  }
  return worst;
}

/** One pass for this host (`host` is its own Host, as just written). */
export function autoDrain(c: AutoDrainComponents, host: Host, afterMs: number): AutoDrainPass {
  const now = (c.now ?? Date.now)();
  const name = host.metadata.name;
  const pass: AutoDrainPass = { drained: false, moves: [] };
  let mark = host.metadata.annotations?.[AUTO_DRAINED_ANNOTATION];
  const markedAt = mark ? Date.parse(mark.split(' ')[0]) : Number.NaN;
  const bad = degradation(host);
  if (bad && !host.spec?.drain) {
    const since = Date.parse(bad.lastTransitionTime);
    if (markedAt >= since) return pass; // drained for this one already, and uncordoned since
    const held = now - since;
    if (held < afterMs) return { ...pass, nextInMs: afterMs - held + 50 };
    mark = `${new Date(now).toISOString()} ${bad.type}: ${bad.message}`;
    c.store.update<Host>({
      ...host,
      metadata: {
        ...host.metadata,
        annotations: { ...host.metadata.annotations, [AUTO_DRAINED_ANNOTATION]: mark },
      },
      spec: { ...host.spec, drain: true },
    });
    c.log.warn(
      { host: name, condition: bad.type },
      `host ${name} drains itself: ${bad.type} for ${Math.round(held / 1000)} s (--auto-drain-after ${Math.round(afterMs / 1000)} s): ${bad.message}`,
    );
    pass.drained = true;
  } else if (!host.spec?.drain || !mark) {
    // Healthy, or drained by an operator (xenosctl drain moves those instances itself).
    return pass;
  }
  return moveInstances(c, name, now, pass);
}

/** A drain migration for every instance still bound to `name` that is not moving (or failed a while ago). */
function moveInstances(
  c: AutoDrainComponents,
  name: string,
  now: number,
  pass: AutoDrainPass,
): AutoDrainPass {
  // The migrations of each instance (namespace/name), listed once for the pass.
  const byInstance = new Map<string, ServiceMigration[]>();
  for (const m of c.store.list(SERVICE_MIGRATION.kind).items) {
    if (m.metadata.deletionTimestamp || !m.spec?.instanceRef?.name) continue;
    const key = `${m.metadata.namespace ?? 'default'}/${m.spec.instanceRef.name}`;
    byInstance.set(key, [...(byInstance.get(key) ?? []), m]);
  }
  for (const i of c.store.list(SERVICE_INSTANCE.kind).items) {
    if (i.spec?.host !== name || i.metadata.deletionTimestamp) continue;
    const namespace = i.metadata.namespace ?? 'default';
    const mine = byInstance.get(`${namespace}/${i.metadata.name}`) ?? [];
    const ended = (m: ServiceMigration) => m.status?.phase === 'Succeeded' || m.status?.phase === 'Failed';
    if (mine.some((m) => !ended(m))) {
      pass.nextInMs = DRAIN_RETRY_MS;
      continue;
    }
    // Still bound here after this host's last drain move of it ended: tried again a while after.
    const lastEnded = Math.max(
      ...mine
        .filter((m) => m.metadata.labels?.[DRAIN_LABEL] === name)
        .map((m) => Date.parse(m.status?.completedAt ?? m.metadata.creationTimestamp ?? '') || 0),
      0,
    );
    if (now - lastEnded < DRAIN_RETRY_MS) {
      pass.nextInMs = Math.min(pass.nextInMs ?? DRAIN_RETRY_MS, lastEnded + DRAIN_RETRY_MS - now);
      continue;
    }
    const m = c.store.create(drainMigration(i, name, { mode: 'Auto', timeoutSeconds: MOVE_TIMEOUT_SECONDS }));
    c.log.info(
      { host: name, instance: keyOf(i), migration: m.metadata.name },
      `host ${name} is draining itself: moving ${keyOf(i)} off (servicemigration ${namespace}/${m.metadata.name})`,
    );
    pass.moves.push(keyOf(i));
    pass.nextInMs = DRAIN_RETRY_MS;
  }
  return pass;
}
