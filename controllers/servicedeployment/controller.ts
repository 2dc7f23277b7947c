// The ServiceDeployment controller: keeps `spec.replicas` ServiceInstances of the deployment's template
// running, spread over the hosts — at most `spread.maxPerHost` on one host, and each new replica on the
// fitting host that has the fewest of them (placement's ranking breaks ties: hosts that hold the image
// first, then rendezvous order). Each deployment is worked on by one live host, the first by rendezvous on
// its uid among the hosts this host sees live; when that host dies the next one takes over at its next
// pass. No master: every host runs this controller and reconciles the deployments it ranks first for.
//
// Its instances are named `<deployment>-<5 letters>`, carry the label `xenos.io/deployment` and a
// controller ownerReference, and are bound to their host when made (`spec.host`), so the spread is the
// deployment's and not left to chance. Scaling down deletes the replicas that are not Ready first, then
// those on the most crowded hosts, then the newest. Deleting the deployment deletes its instances (a
// finalizer holds the deployment until they are gone). Status: `replicas` (instances that exist and are
// not being deleted), `readyReplicas`, `instances`, and Ready once every replica asked for is Ready.
//
// `spec.replicas` is also the scale subresource's (`kubectl scale`, `xenosctl scale`: src/api/scale-subresource.ts).
// Not built yet (issue 13): rolling replacement when the template changes (maxUnavailable/maxSurge), and
// failover of the replicas of a dead host.

import { randomBytes } from 'node:crypto';
import type { HostLiveness } from '../../src/cluster/liveness.ts';
import type { Placement } from '../../src/cluster/placement.ts';
import { ownerOf } from '../../src/cluster/rendezvous.ts';
import { type Log, silentLogger } from '../../src/log/logger.ts';
import { API_VERSION, SERVICE_DEPLOYMENT, SERVICE_INSTANCE } from '../../src/model/kinds.ts';
import type { ServiceDeployment } from '../../src/model/service-deployment.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import { getCondition, READY, setCondition, summariseReady } from '../../src/reconcile/conditions.ts';
import { Controller, type ReconcileResult } from '../../src/reconcile/controller.ts';
import { keyOf } from '../../src/reconcile/keys.ts';
import { Reconciler, type Scope } from '../../src/reconcile/reconciler.ts';
import type { Store } from '../../src/store/store.ts';

/** The label every replica carries: the deployment's name. */
export const DEPLOYMENT_LABEL = 'xenos.io/deployment';
const FINALIZER = 'xenos.io/deployment-instances';
/** The condition that says whether every replica asked for exists (made and bound to a host). */
export const REPLICAS_PLACED = 'ReplicasPlaced';
const UNPLACED_RETRY_MS = 10_000;
/** Kubernetes' suffix alphabet: no vowels (no words), no look-alikes. */
const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

export interface ServiceDeploymentControllerComponents {
  store: Store;
  placement: Pick<Placement, 'decide'>;
  liveness: Pick<HostLiveness, 'liveHosts'>;
  log?: Log;
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

function suffix(): string {
  return [...randomBytes(5)].map((b) => SUFFIX_ALPHABET[b % SUFFIX_ALPHABET.length]).join('');
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
      { store: this.store, log: this.log },
      {
        name: 'servicedeployment',
        kind: SERVICE_DEPLOYMENT.kind,
        workers: init.workers,
        resyncMs: init.resyncMs ?? 30_000,
        reconcile: (key, opts) => this.reconcile(key, opts),
        ignoreStatusOnlyChanges: true,
        // A replica that changes (made, Ready, gone) wakes its deployment.
        watches: [{ kind: SERVICE_INSTANCE.kind, map: (i) => this.ownerKeyOf(i) }],
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

  private ownerKeyOf(i: ServiceInstance): string[] {
    const owner = i.metadata.ownerReferences?.find((o) => o.controller && o.kind === SERVICE_DEPLOYMENT.kind);
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
    const want = d.spec?.replicas ?? 1;
    const replicas = this.replicasOf(d).filter((i) => !i.metadata.deletionTimestamp);
    if (replicas.length > want) {
      for (const i of this.surplus(replicas, replicas.length - want)) {
        this.store.delete({
          kind: SERVICE_INSTANCE.kind,
          namespace: i.metadata.namespace ?? 'default',
          name: i.metadata.name,
        });
        this.log.info(`${ref(d)}: scaled down: deleted ${keyOf(i)}`);
      }
    }
    const perHost = new Map<string, number>();
    for (const i of replicas) if (i.spec?.host) perHost.set(i.spec.host, (perHost.get(i.spec.host) ?? 0) + 1);
    let missing = want - replicas.length;
    let unplaced: string | undefined;
    for (; missing > 0; missing--) {
      const made = this.makeReplica(d, perHost);
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
    perHost: Map<string, number>,
  ): { key: string; host: string } | string {
    const namespace = d.metadata.namespace ?? 'default';
    const template = d.spec!.template;
    const name = `${d.metadata.name}-${suffix()}`;
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
        labels: { ...template.metadata?.labels, [DEPLOYMENT_LABEL]: d.metadata.name },
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
    const max = d.spec?.spread?.maxPerHost;
    const full = new Map<string, string>();
    if (max !== undefined) {
      for (const [host, n] of perHost) {
        if (n >= max) full.set(host, `already runs ${n} of its replicas (spread.maxPerHost ${max})`);
      }
    }
    const decision = this.placement.decide(
      { ...instance, metadata: { ...instance.metadata, uid: name } },
      { exclude: full },
    );
    if (decision.host === undefined) return decision.message;
    // The fewest of this deployment's replicas first; placement's ranking among equals.
    const host = [...decision.ranked].sort((a, b) => (perHost.get(a) ?? 0) - (perHost.get(b) ?? 0))[0];
    this.store.create<ServiceInstance>({ ...instance, spec: { ...spec, host } });
    return { key: `${namespace}/${name}`, host };
  }

  private report(scope: Pass): undefined {
    const replicas = this.replicasOf(scope.object).filter((i) => !i.metadata.deletionTimestamp);
    scope.status((s) => {
      s.replicas = replicas.length;
      s.readyReplicas = replicas.filter(isReady).length;
      s.instances = replicas.map((i) => i.metadata.name).sort();
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
