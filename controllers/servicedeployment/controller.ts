// The ServiceDeployment controller: keeps `spec.replicas` ServiceInstances of the deployment's template
// running, spread over the hosts — at most `spread.maxPerHost` on one host, and each new replica on the
// fitting host that has the fewest of them (placement's ranking breaks ties: hosts that hold the image
// first, then rendezvous order). Each deployment is worked on by one live host, the first by rendezvous on
// its uid among the hosts this host sees live; when that host dies the next one takes over at its next
// pass. No master: every host runs this controller and reconciles the deployments it ranks first for.
//
// Its instances are named `<deployment>-<5 letters>`, carry the labels `xenos.io/deployment` and
// `xenos.io/template-hash` (which template they were made from) and a controller ownerReference, and are
// bound to their host when made (`spec.host`), so the spread is the deployment's and not left to chance.
// Scaling down deletes the replicas that are not Ready first, then those on the most crowded hosts, then
// the newest. When the template (or the spec of its ServiceTemplate) changes, replicas are replaced as a
// Deployment's RollingUpdate does: at most strategy.maxSurge (default 1) replicas over `replicas`, never
// fewer than `replicas` - strategy.maxUnavailable (default 0) Ready; each pass makes what it may and
// deletes what it may, and a replica that becomes Ready brings the next pass. Deleting the deployment deletes its instances (a
// finalizer holds the deployment until they are gone). Status: `replicas` (instances that exist and are
// not being deleted), `readyReplicas`, `updatedReplicas` (made from the current template), `instances`,
// and Ready once every replica asked for has a host; Kubernetes' Available (at least replicas -
// maxUnavailable Ready) and Progressing (ReplicasUpdating, then NewReplicasAvailable once every replica
// runs the current template and is Ready).
//
// `spec.replicas` is also the scale subresource's (`kubectl scale`, `xenosctl scale`: src/api/scale-subresource.ts).
// The replicas of a host that stays NotReady are re-bound to other hosts by the Host controller
// (controllers/host/failover.ts), within the same spread.
// Over 400 lines because scaling, spreading and the rolling replacement all work on the one view of a
// deployment's replicas this class builds per reconcile.

import { createHash } from 'node:crypto';
import { deploymentOf } from '../../src/cluster/failover.ts';
import type { HostLiveness } from '../../src/cluster/liveness.ts';
import type { Placement } from '../../src/cluster/placement.ts';
import { ownerOf } from '../../src/cluster/rendezvous.ts';
import { spreadHost } from '../../src/cluster/spread.ts';
import { type Log, silentLogger } from '../../src/log/logger.ts';
import type { ReconcileMetrics } from '../../src/metrics/host-metrics.ts';
import {
  API_VERSION,
  SERVICE_DEPLOYMENT,
  SERVICE_INSTANCE,
  SERVICE_TEMPLATE,
} from '../../src/model/kinds.ts';
import { generatedSuffix } from '../../src/model/names.ts';
import type { ServiceDeployment } from '../../src/model/service-deployment.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import type { ServiceTemplate } from '../../src/model/service-template.ts';
import { getCondition, READY, setCondition, summariseReady } from '../../src/reconcile/conditions.ts';
import { Controller, type ReconcileResult } from '../../src/reconcile/controller.ts';
import { TerminalError } from '../../src/reconcile/errors.ts';
import { keyOf } from '../../src/reconcile/keys.ts';
import { Reconciler, type Scope } from '../../src/reconcile/reconciler.ts';
import type { Store } from '../../src/store/store.ts';

/** The label every replica carries: the deployment's name. */
export const DEPLOYMENT_LABEL = 'xenos.io/deployment';
/** The label that says which template a replica was made from (templateHash). */
export const TEMPLATE_HASH_LABEL = 'xenos.io/template-hash';
const FINALIZER = 'xenos.io/deployment-instances';
/** The condition that says whether every replica asked for exists (made and bound to a host). */
export const REPLICAS_PLACED = 'ReplicasPlaced';
/** At least replicas - maxUnavailable replicas are Ready (Kubernetes' Deployment condition). */
export const AVAILABLE = 'Available';
/** The rollout: ReplicasUpdating while replicas of the current template are being made Ready,
 *  NewReplicasAvailable once every replica runs it and is Ready (Kubernetes' Deployment condition). */
export const PROGRESSING = 'Progressing';
const UNPLACED_RETRY_MS = 10_000;

export interface ServiceDeploymentControllerComponents {
  store: Store;
  placement: Pick<Placement, 'decide'>;
  liveness: Pick<HostLiveness, 'liveHosts'>;
  log?: Log;
  /** Reconcile results, latency and queue depth go here (the host's /metrics). */
  metrics?: ReconcileMetrics;
}

export interface ServiceDeploymentControllerInit {
  hostName: string;
  workers?: number;
  resyncMs?: number;
}

type Pass = Scope<typeof SERVICE_DEPLOYMENT.kind>;

function ref(d: ServiceDeployment): string {
  return `ServiceDeployment ${keyOf(d)}`;
}

/** JSON with object keys sorted: the same template always gives the same text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Which template a replica was made from: 10 hex digits of the SHA-256 of the deployment's template and
 *  of the spec of the ServiceTemplate it refers to (a new image or default there rolls the replicas too;
 *  the ServiceTemplate's status, which each host writes as it imports, does not). */
export function templateHash(d: ServiceDeployment, template?: ServiceTemplate): string {
  return createHash('sha256')
    .update(canonical(d.spec?.template ?? {}))
    .update(template ? `\0${canonical(template.spec ?? {})}` : '')
    .digest('hex')
    .slice(0, 10);
}

/** The replacement bounds, defaults filled in; both 0 could never replace anything. */
function strategyOf(d: ServiceDeployment): { maxSurge: number; maxUnavailable: number } {
  const maxSurge = d.spec?.strategy?.maxSurge ?? 1;
  const maxUnavailable = d.spec?.strategy?.maxUnavailable ?? 0;
  if (maxSurge === 0 && maxUnavailable === 0)
    throw new TerminalError(
      'InvalidStrategy',
      `${ref(d)}: spec.strategy: maxSurge and maxUnavailable cannot both be 0 (no replica could ever be replaced)`,
    );
  return { maxSurge, maxUnavailable };
}

function isReady(i: ServiceInstance): boolean {
  return getCondition(i.status, READY)?.status === 'True';
}

export class ServiceDeploymentController {
  private readonly store: Store;
  private readonly placement: Pick<Placement, 'decide'>;
  private readonly liveness: Pick<HostLiveness, 'liveHosts'>;
  private readonly log: Log;
  private readonly hostName: string;
  private readonly reconciler: Reconciler<typeof SERVICE_DEPLOYMENT.kind>;
  private readonly runner: Controller<typeof SERVICE_DEPLOYMENT.kind>;

  constructor(components: ServiceDeploymentControllerComponents, init: ServiceDeploymentControllerInit) {
    this.store = components.store;
    this.placement = components.placement;
    this.liveness = components.liveness;
    this.log = components.log ?? silentLogger.root;
    this.hostName = init.hostName;
    this.reconciler = new Reconciler(
      { store: this.store, log: this.log },
      {
        kind: SERVICE_DEPLOYMENT.kind,
        finalizer: FINALIZER,
        owns: (d) => this.worksOn(d),
        // Another host works on it; a pass comes back at the resync, or when liveness changes the owner.
        elsewhere: async () => undefined,
        finalize: (scope) => this.finalize(scope),
        steps: [
          { name: 'replicas', run: (scope) => this.scale(scope) },
          { name: 'status', run: (scope) => this.report(scope) },
        ],
        summarise: (status, generation) =>
          summariseReady(status, generation, { dependsOn: [REPLICAS_PLACED] }),
      },
    );
    this.runner = new Controller(
      { store: this.store, log: this.log, metrics: components.metrics },
      {
        name: 'servicedeployment',
        kind: SERVICE_DEPLOYMENT.kind,
        workers: init.workers,
        resyncMs: init.resyncMs ?? 30_000,
        reconcile: (key, opts) => this.reconcile(key, opts),
        ignoreStatusOnlyChanges: true,
        // A replica that changes (made, Ready, gone) wakes its deployment; so does its ServiceTemplate.
        watches: [
          { kind: SERVICE_INSTANCE.kind, map: (i) => this.ownerKeyOf(i) },
          { kind: SERVICE_TEMPLATE.kind, map: (t) => this.usersOf(t) },
        ],
      },
    );
  }

  start(): void {
    this.runner.start();
  }

  async stop(): Promise<void> {
    await this.runner.stop();
  }

  reconcile(key: string, opts: { signal: AbortSignal }): Promise<ReconcileResult | undefined> {
    return this.reconciler.reconcile(key, opts);
  }

  /** Whether this host works on `d`: the first live host by rendezvous on its uid. */
  worksOn(d: ServiceDeployment): boolean {
    return ownerOf(`deployment/${d.metadata.uid ?? keyOf(d)}`, this.liveness.liveHosts()) === this.hostName;
  }

  /** The deployments (keys) whose replicas run `t`. */
  private usersOf(t: ServiceTemplate): string[] {
    const namespace = t.metadata.namespace ?? 'default';
    return this.store
      .list(SERVICE_DEPLOYMENT.kind, { namespace })
      .items.filter((d) => d.spec?.template?.spec?.templateRef?.name === t.metadata.name)
      .map((d) => `${namespace}/${d.metadata.name}`);
  }

  /** The ServiceTemplate `d`'s replicas run, as this host's store has it. */
  private templateOf(d: ServiceDeployment): ServiceTemplate | undefined {
    const name = d.spec?.template?.spec?.templateRef?.name ?? '';
    return this.store.get({
      kind: SERVICE_TEMPLATE.kind,
      namespace: d.metadata.namespace ?? 'default',
      name,
    });
  }

  private ownerKeyOf(i: ServiceInstance): string[] {
    const owner = deploymentOf(i);
    return owner ? [`${i.metadata.namespace ?? 'default'}/${owner.name}`] : [];
  }

  /** The instances `d` controls (by its uid, not its name: a new deployment of the same name owns none). */
  private replicasOf(d: ServiceDeployment): ServiceInstance[] {
    return this.store
      .list(SERVICE_INSTANCE.kind, { namespace: d.metadata.namespace ?? 'default' })
      .items.filter((i) => i.metadata.ownerReferences?.some((o) => o.controller && o.uid === d.metadata.uid));
  }

  private async scale(scope: Pass): Promise<{ requeueAfterMs: number } | undefined> {
    const d = scope.object;
    const template = this.templateOf(d);
    if (!template) {
      // Replicas could not run, and made now they would be replaced as soon as it comes (their hash
      // includes it): wait for it (its watch brings the deployment back).
      const name = d.spec?.template?.spec?.templateRef?.name;
      scope.status((s) =>
        setCondition(
          s,
          {
            type: REPLICAS_PLACED,
            status: 'False',
            reason: 'TemplateNotFound',
            message: `spec.template.spec.templateRef.name: ServiceTemplate ${d.metadata.namespace ?? 'default'}/${name} does not exist; no replica is made until it does`,
          },
          d.metadata.generation,
        ),
      );
      return { requeueAfterMs: UNPLACED_RETRY_MS };
    }
    const want = d.spec?.replicas ?? 1;
    const { maxSurge, maxUnavailable } = strategyOf(d);
    const hash = templateHash(d, template);
    const live = this.replicasOf(d).filter((i) => !i.metadata.deletionTimestamp);
    const current = live.filter((i) => i.metadata.labels?.[TEMPLATE_HASH_LABEL] === hash);
    const old = live.filter((i) => i.metadata.labels?.[TEMPLATE_HASH_LABEL] !== hash);
    const gone = new Set<ServiceInstance>();
    const remove = (i: ServiceInstance, why: string) => {
      this.store.delete({
        kind: SERVICE_INSTANCE.kind,
        namespace: i.metadata.namespace ?? 'default',
        name: i.metadata.name,
      });
      gone.add(i);
      this.log.info(`${ref(d)}: ${why}: deleted ${keyOf(i)}`);
    };
    // More replicas of the current template than asked for: scaled down.
    if (current.length > want) {
      for (const i of this.surplus(current, current.length - want)) remove(i, 'scaled down');
    }
    // Replicas of an earlier template go as far as availability allows: never fewer than
    // replicas - maxUnavailable Ready (a not-Ready one can always go).
    let ready = live.filter((i) => !gone.has(i) && isReady(i)).length;
    const minReady = Math.max(0, want - maxUnavailable);
    for (const i of this.surplus(old, old.length)) {
      if (isReady(i)) {
        if (ready - 1 < minReady) continue;
        ready -= 1;
      }
      remove(i, 'replaced (its template changed)');
    }
    const left = live.filter((i) => !gone.has(i));
    const perHost = new Map<string, number>();
    for (const i of left) if (i.spec?.host) perHost.set(i.spec.host, (perHost.get(i.spec.host) ?? 0) + 1);
    // New replicas: up to `replicas` of the current template, and at most maxSurge over `replicas` in all.
    const updated = left.length - old.filter((i) => !gone.has(i)).length;
    let missing = Math.min(want - updated, want + maxSurge - left.length);
    let unplaced: string | undefined;
    for (; missing > 0; missing--) {
      const made = this.makeReplica(d, hash, perHost);
      if (typeof made === 'string') {
        unplaced = made;
        break;
      }
      perHost.set(made.host, (perHost.get(made.host) ?? 0) + 1);
      this.log.info(`${ref(d)}: made ${made.key} on host ${made.host}`);
    }
    scope.status((s) =>
      setCondition(
        s,
        unplaced
          ? {
              type: REPLICAS_PLACED,
              status: 'False',
              reason: 'Unschedulable',
              message: `${missing} of ${want} replica(s) have no host: ${unplaced}`,
            }
          : {
              type: REPLICAS_PLACED,
              status: 'True',
              reason: 'AllPlaced',
              message: `${want} replica(s), each bound to a host`,
            },
        d.metadata.generation,
      ),
    );
    return unplaced ? { requeueAfterMs: UNPLACED_RETRY_MS } : undefined;
  }

  /** `n` replicas to remove: not Ready first, then those on the most crowded hosts, then the newest. */
  private surplus(replicas: ServiceInstance[], n: number): ServiceInstance[] {
    const onHost = new Map<string, number>();
    for (const i of replicas) onHost.set(i.spec?.host ?? '', (onHost.get(i.spec?.host ?? '') ?? 0) + 1);
    return [...replicas]
      .sort(
        (a, b) =>
          Number(isReady(a)) - Number(isReady(b)) ||
          (onHost.get(b.spec?.host ?? '') ?? 0) - (onHost.get(a.spec?.host ?? '') ?? 0) ||
          (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''),
      )
      .slice(0, n);
  }

  /** Makes one replica on the fitting host with the fewest of `d`'s replicas (at most maxPerHost), or
   *  says why no host fits. */
  private makeReplica(
    d: ServiceDeployment,
    hash: string,
    perHost: Map<string, number>,
  ): { key: string; host: string } | string {
    const namespace = d.metadata.namespace ?? 'default';
    const template = d.spec!.template;
    const name = `${d.metadata.name}-${generatedSuffix()}`;
    const spec = {
      ...template.spec,
      hostSelector: { ...template.spec.hostSelector, ...d.spec?.spread?.hostSelector },
    };
    const instance: ServiceInstance = {
      apiVersion: API_VERSION,
      kind: SERVICE_INSTANCE.kind,
      metadata: {
        name,
        namespace,
        labels: {
          ...template.metadata?.labels,
          [DEPLOYMENT_LABEL]: d.metadata.name,
          [TEMPLATE_HASH_LABEL]: hash,
        },
        ...(template.metadata?.annotations ? { annotations: template.metadata.annotations } : {}),
        ownerReferences: [
          {
            apiVersion: API_VERSION,
            kind: SERVICE_DEPLOYMENT.kind,
            name: d.metadata.name,
            uid: d.metadata.uid ?? '',
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec,
    };
    const choice = spreadHost(
      this.placement,
      { ...instance, metadata: { ...instance.metadata, uid: name } },
      perHost,
      d.spec?.spread?.maxPerHost,
    );
    if (!('host' in choice)) return choice.message;
    const { host } = choice;
    this.store.create<ServiceInstance>({ ...instance, spec: { ...spec, host } });
    return { key: `${namespace}/${name}`, host };
  }

  private report(scope: Pass): undefined {
    const d = scope.object;
    const replicas = this.replicasOf(d).filter((i) => !i.metadata.deletionTimestamp);
    const hash = templateHash(d, this.templateOf(d));
    const want = d.spec?.replicas ?? 1;
    const updated = replicas.filter((i) => i.metadata.labels?.[TEMPLATE_HASH_LABEL] === hash);
    const ready = replicas.filter(isReady).length;
    const minReady = Math.max(0, want - strategyOf(d).maxUnavailable);
    const complete =
      replicas.length === want && updated.length === want && updated.filter(isReady).length === want;
    scope.status((s) => {
      s.replicas = replicas.length;
      s.readyReplicas = ready;
      s.updatedReplicas = updated.length;
      s.instances = replicas.map((i) => i.metadata.name).sort();
      // Kubernetes' Deployment pair, so `kubectl wait --for=condition=Available` reads as there.
      const enough = ready >= minReady;
      setCondition(
        s,
        {
          type: AVAILABLE,
          status: enough ? 'True' : 'False',
          reason: enough ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
          message: `${ready} of ${want} replica(s) Ready (at least ${minReady} wanted)`,
        },
        d.metadata.generation,
      );
      setCondition(
        s,
        {
          type: PROGRESSING,
          status: 'True',
          reason: complete ? 'NewReplicasAvailable' : 'ReplicasUpdating',
          message: complete
            ? `all ${want} replica(s) run the current template and are Ready`
            : `${updated.length} of ${want} replica(s) run the current template, ${updated.filter(isReady).length} of them Ready; ${replicas.length - updated.length} older`,
        },
        d.metadata.generation,
      );
    });
    return undefined;
  }

  /** Being deleted: its replicas go first; true once none is left. */
  private finalize(scope: Pass): boolean {
    const replicas = this.replicasOf(scope.object);
    for (const i of replicas.filter((r) => !r.metadata.deletionTimestamp)) {
      this.store.delete({
        kind: SERVICE_INSTANCE.kind,
        namespace: i.metadata.namespace ?? 'default',
        name: i.metadata.name,
      });
    }
    return replicas.length === 0;
  }
}
