// The ServiceMigration controller of one host: moves an instance bound here to another host (the source's
// side: plan → the target pulls the image → transfer → commit or roll back, source.ts) and does the
// target's part for migrations addressed here (target.ts: pull the image ahead, accept the streams,
// await the commit, clean up after a failure). One Reconciler pass per key: the source owns the status;
// a migration is one request, so a finished one is settled and left as it is (kept until deleted). The
// protocol and its failure cases: src/cluster/migration/README.md.

import type { LocalMigrations } from '../../src/cluster/migration/local-migrations.ts';
import type { MigrationReceiverComponents } from '../../src/cluster/migration/migration-receiver.ts';
import type { Placement } from '../../src/cluster/placement.ts';
import { ownerOf } from '../../src/cluster/rendezvous.ts';
import type { Driver } from '../../src/drivers/driver.ts';
import { type Log, silentLogger } from '../../src/log/logger.ts';
import type { ReconcileMetrics } from '../../src/metrics/host-metrics.ts';
import { SERVICE_MIGRATION, SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import type { ServiceMigration, ServiceMigrationStatus } from '../../src/model/service-migration.ts';
import { getCondition, setCondition } from '../../src/reconcile/conditions.ts';
import { Controller, type ReconcileResult } from '../../src/reconcile/controller.ts';
import { Reconciler } from '../../src/reconcile/reconciler.ts';
import type { Store } from '../../src/store/store.ts';
import { failed, instanceKey, instanceOf, MIGRATED, namespaceOf } from './facts.ts';
import {
  imageOnTarget,
  type MigrationScope,
  type SourceComponents,
  settleOrphaned,
  transfer,
} from './source.ts';
import { MigrationTarget, type TargetInit } from './target.ts';
import { type Plan, plan } from './validate.ts';

export interface ServiceMigrationControllerComponents {
  store: Store;
  driver: Driver;
  migrations: LocalMigrations;
  placement: Pick<Placement, 'decide' | 'allocated'>;
  isLive(host: string): boolean;
  /** The live hosts: one of them settles a migration whose instance is gone. */
  liveHosts(): string[];
  transport: SourceComponents['transport'];
  log?: Log;
  /** Reconcile results, latency and queue depth go here (the host's /metrics). */
  metrics?: ReconcileMetrics;
}

export interface ServiceMigrationControllerInit extends TargetInit {
  workers?: number;
}

/** Longer than any migration may run (spec.timeoutSeconds ≤ 1 day): the migration's own timeout ends it. */
const RECONCILE_TIMEOUT_MS = 25 * 3600_000;

export class ServiceMigrationController {
  readonly target: MigrationTarget;
  readonly #runner: Controller<typeof SERVICE_MIGRATION.kind>;
  readonly #reconciler: Reconciler<typeof SERVICE_MIGRATION.kind, { plan?: Plan }>;
  readonly #c: ServiceMigrationControllerComponents;
  readonly #self: string;

  constructor(components: ServiceMigrationControllerComponents, init: ServiceMigrationControllerInit) {
    const { store, driver, migrations } = components;
    const log = components.log ?? silentLogger.root;
    this.#c = components;
    this.#self = init.hostName;
    this.target = new MigrationTarget({ store, driver, migrations, isLive: components.isLive, log }, init);
    const source: SourceComponents = { ...components, log };
    const self = init.hostName;
    this.#reconciler = new Reconciler<typeof SERVICE_MIGRATION.kind, { plan?: Plan }>(
      { store, log },
      {
        kind: SERVICE_MIGRATION.kind,
        data: () => ({}),
        owns: (m) => this.#owner(m) === self,
        elsewhere: (m, signal) =>
          m.status?.targetHost === self ? this.target.duties(m, signal) : Promise.resolve(undefined),
        steps: [
          {
            name: 'settled',
            run: ({ object }) =>
              object.status?.phase === 'Succeeded' || object.status?.phase === 'Failed'
                ? { stop: true }
                : undefined,
          },
          {
            // Running here, but nothing here drives it: this xenosd restarted during the migration.
            name: 'orphaned',
            run: async (scope) => {
              if (scope.object.status?.phase !== 'Running' || migrations.moving(instanceKey(scope.object)))
                return undefined;
              await settleOrphaned(source, scope as MigrationScope);
              return { stop: true };
            },
          },
          {
            name: 'plan',
            run: ({ object, data, status }) => {
              data.plan = plan(this.#c, object, self);
              const { target, mode } = data.plan;
              status((s) => {
                s.phase ??= 'Pending';
                s.sourceHost = self;
                s.targetHost = target;
                s.mode = mode === 'live' ? 'Live' : 'Cold';
              });
              return undefined;
            },
          },
          {
            name: 'image',
            run: (scope) => imageOnTarget(source, scope as MigrationScope, this.#digestOf(scope.object)),
          },
          {
            name: 'transfer',
            run: async (scope) => {
              await transfer(source, scope as MigrationScope, self);
              return { stop: true };
            },
          },
        ],
        // A migration that cannot be made is over: Failed with the reason (it is not retried).
        failed: (s, failure, object) => {
          if (failure.terminal) failed(failure.reason, failure.message, object.metadata.generation ?? 1)(s);
        },
        summarise: summarise,
      },
    );
    this.#runner = new Controller(
      { store, log, metrics: components.metrics },
      {
        name: 'servicemigration',
        kind: SERVICE_MIGRATION.kind,
        workers: init.workers ?? 4,
        reconcileTimeoutMs: RECONCILE_TIMEOUT_MS,
        reconcile: (key, opts) => this.reconcile(key, opts),
        filter: (m) => this.#owner(m) === self || m.status?.targetHost === self,
      },
    );
  }

  /** What the daemon's MigrationReceiver asks of this host. */
  get receiver(): Pick<MigrationReceiverComponents, 'authorize' | 'accept'> {
    return { authorize: this.target.authorize, accept: this.target.accept };
  }

  start(): void {
    this.#runner.start();
  }

  async stop(): Promise<void> {
    await this.#runner.stop();
  }

  reconcile(key: string, opts: { signal: AbortSignal }): Promise<ReconcileResult | undefined> {
    return this.#reconciler.reconcile(key, opts);
  }

  /** The source once it started; before, the host the instance is bound to; with no instance, one live
   *  host (it settles the migration as failed). */
  #owner(m: ServiceMigration): string | undefined {
    const bound = m.status?.sourceHost ?? instanceOf(this.#c.store, m)?.spec?.host;
    return bound ?? ownerOf(`migration/${m.metadata.uid}`, [this.#self, ...this.#c.liveHosts()]);
  }

  #digestOf(m: ServiceMigration): string | undefined {
    const instance = instanceOf(this.#c.store, m);
    const name = instance?.spec?.templateRef?.name ?? '';
    const t = this.#c.store.get({ kind: SERVICE_TEMPLATE.kind, namespace: namespaceOf(m), name });
    return t?.spec?.image?.digest ?? t?.status?.digest;
  }
}

/** Ready says whether the instance moved: True once Succeeded, else the Migrated condition's word. */
function summarise(s: ServiceMigrationStatus, generation: number): void {
  const migrated = getCondition(s, MIGRATED);
  if (s.phase === 'Succeeded')
    setCondition(
      s,
      { type: 'Ready', status: 'True', reason: 'Migrated', message: migrated?.message ?? 'moved' },
      generation,
    );
  else
    setCondition(
      s,
      {
        type: 'Ready',
        status: 'False',
        reason: migrated?.reason ?? s.phase ?? 'Pending',
        message: migrated?.message ?? 'the migration has not started yet',
      },
      generation,
    );
}
