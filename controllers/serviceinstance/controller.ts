// The ServiceInstance controller of one host, wired: the runner (src/reconcile/controller.ts) watches
// instances and their templates and queues the keys of those this host concerns; each key goes through
// the Reconciler skeleton (src/reconcile/reconciler.ts) with this kind's steps (reconcile-steps.ts),
// which drive one domain machine per instance (machines.ts, machine.ts) and queue status, written once
// per pass. On start, domains the driver holds whose instance no longer exists (or lives elsewhere) are
// torn down (orphans.ts).

import { eventRecorder } from '../../src/api/events.ts';
import { failoverOf } from '../../src/cluster/failover.ts';
import type { LocalMigrations } from '../../src/cluster/migration/local-migrations.ts';
import type { Driver } from '../../src/drivers/driver.ts';
import { cachedImage } from '../../src/images/import-image.ts';
import { type Log, silentLogger } from '../../src/log/logger.ts';
import type { ReconcileMetrics } from '../../src/metrics/host-metrics.ts';
import { SERVICE_INSTANCE, SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import type { ServiceTemplate } from '../../src/model/service-template.ts';
import { Controller, type ReconcileResult } from '../../src/reconcile/controller.ts';
import { keyOf } from '../../src/reconcile/keys.ts';
import type { RateLimiter } from '../../src/reconcile/rate-limiter.ts';
import { Reconciler } from '../../src/reconcile/reconciler.ts';
import type { Store } from '../../src/store/store.ts';
import type { DomainActorsInit } from './actors.ts';
import type { DomainSnapshot } from './conditions.ts';
import type { InstanceCredentials } from './credentials.ts';
import { identityOf } from './domain-spec.ts';
import type { InstanceLayerCopies } from './layer-copies.ts';
import type { MachineOptions } from './machine-types.ts';
import { DomainMachines } from './machines.ts';
import { migrationHooks } from './migration-hooks.ts';
import { sweepOrphans } from './orphans.ts';
import { type InstancePass, instanceSteps, type LocalImages, orphanedFinalizer } from './reconcile-steps.ts';

export { REQUESTED_STATE_ANNOTATION } from './machines.ts';
export { DOMAIN_FINALIZER, type LocalImages } from './reconcile-steps.ts';

/** The LocalImages of src/images' cache directory (what the ServiceTemplate controller imports into). */
export function imageCache(cacheDir: string): LocalImages {
  return { locate: async (digest) => (await cachedImage(cacheDir, digest))?.path };
}

export interface ServiceInstanceControllerComponents {
  store: Store;
  /** The host's driver (the daemon's selection). */
  driver: Driver;
  images: LocalImages;
  /** Hands each domain its notice-board token (a file named by XENOS_TOKEN_FILE); without it, none. */
  credentials?: InstanceCredentials;
  /** Instances moving between hosts (left alone meanwhile); this controller lends them its hooks. */
  migrations?: LocalMigrations;
  /** Resolves once this host's store has caught up with the cluster after a start (ClusterService): until
   *  then the instances that fail over are not started or adopted here, and no domain is swept. Absent:
   *  nothing to wait for (one host, no replication). */
  caughtUp?: (signal: AbortSignal) => Promise<void>;
  /** Whether this host sees a majority of the cluster's hosts live, and a way to hear of changes: a
   *  singleton (failover.singleton) runs only while it does. Absent: always. */
  quorum?: {
    has(): { has: boolean; live: number; known: number };
    onChange(listener: () => void): () => void;
  };
  /** Failover's copies of disk layers (layer-copies.ts); absent: none are made or kept. */
  layerCopies?: InstanceLayerCopies;
  log?: Log;
  /** Reconcile results, latency and queue depth go here (the host's /metrics). */
  metrics?: ReconcileMetrics;
}

export interface ServiceInstanceControllerInit {
  hostName: string;
  /** Place every unplaced instance on this host (one host, no placement). Default true; a daemon whose
   *  cluster placement writes spec.host sets false, and unplaced instances are then left alone. */
  placeUnplaced?: boolean;
  /** The API base URL services inside domains reach their host at (XENOS_API). */
  apiUrl?: string;
  /** Reconciles run at once. Default 8: a reconcile mostly waits (image lookup, the driver's inspect),
   *  so two workers left most instances of a burst queued behind those waits. */
  workers?: number;
  resyncMs?: number;
  /** Re-check an instance whose template is missing or not ready this often. Default 10 s. */
  templateRetryMs?: number;
  machine?: Partial<MachineOptions>;
  actors?: DomainActorsInit;
  rateLimiter?: RateLimiter;
}

const DEFAULT_WORKERS = 8;

export class ServiceInstanceController {
  private readonly store: Store;
  private readonly driver: Driver;
  private readonly log: Log;
  private readonly init: ServiceInstanceControllerInit;
  private readonly machines: DomainMachines;
  private readonly reconciler: Reconciler<typeof SERVICE_INSTANCE.kind, InstancePass>;
  private readonly runner: Controller<typeof SERVICE_INSTANCE.kind>;
  private readonly migrations?: LocalMigrations;
  private abort?: AbortController;
  private sweep?: Promise<void>;
  private readonly caughtUp?: (signal: AbortSignal) => Promise<void>;
  private fenced: boolean;
  private readonly quorum?: ServiceInstanceControllerComponents['quorum'];
  private hadQuorum = true;
  private unlisten?: () => void;

  constructor(components: ServiceInstanceControllerComponents, init: ServiceInstanceControllerInit) {
    const { store, driver, credentials, migrations } = components;
    this.store = store;
    this.driver = driver;
    this.log = components.log ?? silentLogger.root;
    this.init = init;
    this.caughtUp = components.caughtUp;
    this.fenced = components.caughtUp !== undefined;
    this.quorum = components.quorum;
    const event = eventRecorder(
      store,
      { component: 'serviceinstance-controller', host: init.hostName },
      this.log,
    );
    this.machines = new DomainMachines(
      {
        driver,
        log: this.log,
        changed: (key) => this.runner.enqueue(key),
        record: (instance, ev) => event(instance, ev.eventType, ev.reason, ev.message),
        // Its token was issued by this host: once the domain is gone from here, so is the token.
        released: (instance) => credentials?.revoke(identityOf(instance)),
        arrived: (key) => migrations?.takeArrived(key) ?? false,
      },
      { machine: init.machine, actors: init.actors },
    );
    this.reconciler = new Reconciler(
      { store, log: this.log },
      instanceSteps(
        {
          store,
          driver,
          images: components.images,
          machines: this.machines,
          credentials,
          event,
          migrations,
          fenced: () => this.fenced,
          quorum: this.quorum && (() => this.quorum!.has().has),
          layerCopies: components.layerCopies,
        },
        {
          hostName: init.hostName,
          placeUnplaced: init.placeUnplaced,
          apiUrl: init.apiUrl,
          templateRetryMs: init.templateRetryMs,
          stopGraceMs: init.actors?.stopGraceMs,
        },
      ),
    );
    this.runner = new Controller(
      { store, log: this.log, metrics: components.metrics },
      {
        name: 'serviceinstance',
        kind: SERVICE_INSTANCE.kind,
        workers: init.workers ?? DEFAULT_WORKERS,
        resyncMs: init.resyncMs,
        rateLimiter: init.rateLimiter,
        reconcile: (key, opts) => this.reconcile(key, opts),
        filter: (obj) => this.concerns(obj),
        watches: [{ kind: SERVICE_TEMPLATE.kind, map: (t) => this.instancesOf(t) }],
      },
    );
    this.migrations = migrations;
    migrations?.setHooks(
      migrationHooks(
        {
          store,
          images: components.images,
          machines: this.machines,
          credentials,
          enqueue: (key) => this.runner.enqueue(key),
        },
        { hostName: init.hostName, apiUrl: init.apiUrl },
      ),
    );
  }

  start(): void {
    if (this.abort) return;
    this.abort = new AbortController();
    this.runner.start();
    this.unlisten = this.quorum?.onChange(() => this.quorumChanged());
    const signal = this.abort.signal;
    const sweep = (which?: (i: ServiceInstance | undefined) => boolean) =>
      sweepOrphans(
        {
          store: this.store,
          driver: this.driver,
          log: this.log,
          enqueue: (key) => this.runner.enqueue(key),
          migrations: this.migrations,
        },
        { hostName: this.init.hostName, signal, stopGraceMs: this.init.actors?.stopGraceMs, which },
      );
    // At once for everything but the instances that fail over; those once the store has caught up.
    const failsOver = (i: ServiceInstance | undefined) =>
      i !== undefined && failoverOf(this.store, i) !== undefined;
    this.sweep = (
      this.caughtUp
        ? sweep((i) => !failsOver(i)).then(() => this.catchUp(signal, () => sweep(failsOver)))
        : sweep()
    ).catch((err) => {
      if (!signal.aborted) this.log.error({ err: err }, 'sweeping orphaned domains failed');
    });
  }

  /** A majority of hosts lost or found again: the singletons bound here stop or start (owns() decides). */
  private quorumChanged(): void {
    const q = this.quorum!.has();
    if (q.has === this.hadQuorum) return;
    this.hadQuorum = q.has;
    const singletons = this.store
      .list(SERVICE_INSTANCE.kind)
      .items.filter((i) => i.spec?.host === this.init.hostName && failoverOf(this.store, i)?.singleton);
    if (singletons.length === 0) return;
    if (q.has) this.log.info(`${q.live} of ${q.known} hosts live again: singleton copies run here again`);
    else
      this.log.warn(
        `only ${q.live} of ${q.known} hosts live here (no majority): stopping singleton copies ${singletons.map(keyOf).join(', ')}, as the majority may start them elsewhere`,
      );
    for (const i of singletons) this.runner.enqueue(keyOf(i));
  }

  /** The fence of a (re)started host: until the store has caught up, instances that fail over are left
   *  alone; then `sweep` stops the copies of them that were re-bound meanwhile (before any could be
   *  adopted), the fence lifts, and those bound here are looked at again. */
  private async catchUp(signal: AbortSignal, sweep: () => Promise<void>): Promise<void> {
    const started = Date.now();
    await this.caughtUp!(signal);
    if (signal.aborted) throw signal.reason;
    this.log.info(
      `caught up with the cluster in ${Date.now() - started} ms: stale copies are stopped, then instances that fail over are taken up`,
    );
    await sweep();
    this.fenced = false;
    for (const i of this.store.list(SERVICE_INSTANCE.kind).items)
      if (i.spec?.host === this.init.hostName) this.runner.enqueue(keyOf(i));
  }

  /** Stops reconciling. Domains keep running (a restarted coordinator adopts them). */
  async stop(): Promise<void> {
    this.abort?.abort(new Error('serviceinstance controller stopped'));
    this.unlisten?.();
    await this.runner.stop();
    await this.sweep;
    this.machines.stopAll();
    this.abort = undefined;
  }

  /** One pass over an instance key (what the runner calls; tests may call it directly). */
  /** Queues an instance's reconcile (its status written again). */
  enqueue(key: string): void {
    this.runner.enqueue(key);
  }

  reconcile(key: string, opts: { signal: AbortSignal }): Promise<ReconcileResult | undefined> {
    return this.reconciler.reconcile(key, opts);
  }

  /** For tests and the daemon's debug output: the machine snapshot of an instance key. */
  snapshot(key: string): DomainSnapshot | undefined {
    return this.machines.snapshot(key);
  }

  private concerns(instance: ServiceInstance): boolean {
    const host = instance.spec?.host;
    if (host === this.init.hostName || this.machines.has(keyOf(instance))) return true;
    if (orphanedFinalizer(this.store, instance)) return true;
    return !host && this.init.placeUnplaced !== false;
  }

  private instancesOf(template: ServiceTemplate): string[] {
    return this.store
      .list(SERVICE_INSTANCE.kind, { namespace: template.metadata.namespace ?? 'default' })
      .items.filter((i) => i.spec?.templateRef?.name === template.metadata.name)
      .filter((i) => this.concerns(i))
      .map(keyOf);
  }
}
