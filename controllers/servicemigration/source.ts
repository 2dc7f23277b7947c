// The source's side of a migration, once it is planned: wait for the target to hold the template's base
// image, then move the domain with the driver's migrateOut over the cluster transport, and commit or
// roll back. The commit point is ONE write: the instance's binding (spec.host → target). A live driver
// makes it through its `commit` hook at the switchover (the source's copy stopped for good, the target
// holding all state, its copy not yet running); a cold one returns once the target's copy runs, and the
// write follows. Then the source's stopped copy is destroyed. Before it,
// any failure — the link, the target, a timeout, this xenosd stopping — writes Failed first (so the
// target removes its copy) and then starts the source's copy again. A source xenosd that restarts and
// finds a Running migration of its own it no longer drives settles it from the store: bound to the
// target → Succeeded (and the local copy goes); not bound → Failed, and its own copy runs again.

import { MigrationFailedError } from '../../src/cluster/migration/errors.ts';
import type { LocalMigrations } from '../../src/cluster/migration/local-migrations.ts';
import type { Driver, MigrationProgress, MigrationTransport } from '../../src/drivers/driver.ts';
import type { Log } from '../../src/log/logger.ts';
import { SERVICE_INSTANCE } from '../../src/model/kinds.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import type { ServiceMigration, ServiceMigrationStatus } from '../../src/model/service-migration.ts';
import { setCondition } from '../../src/reconcile/conditions.ts';
import { keyOf, objectKey } from '../../src/reconcile/keys.ts';
import type { Scope } from '../../src/reconcile/reconciler.ts';
import type { Store } from '../../src/store/store.ts';
import {
  domainIdOfInstance,
  failed,
  hostNamed,
  instanceOf,
  MIGRATED,
  migrationRef,
  succeeded,
  timeoutMsOf,
  watchPeer,
} from './facts.ts';
import type { Plan } from './validate.ts';

/** Progress is written at most this often (ms). */
const PROGRESS_EVERY_MS = 500;

export type MigrationScope = Scope<'ServiceMigration', { plan?: Plan }>;

export interface SourceComponents {
  store: Store;
  driver: Driver;
  migrations: LocalMigrations;
  /** The transport to `target` for this migration (the cluster's libp2p one). */
  transport(m: ServiceMigration, target: { name: string; peerId: string }): MigrationTransport;
  isLive(host: string): boolean;
  log: Log;
}

/** Waits (requeueing) until the target holds the template's image; it pulls it when it sees the migration. */
export function imageOnTarget(c: SourceComponents, scope: MigrationScope, digest: string | undefined) {
  const { target } = scope.data.plan!;
  const held = hostNamed(c.store, target)?.status?.images?.some((i) => i.digest === digest);
  if (!digest || held) return undefined;
  const m = scope.object;
  const waited = Date.now() - Date.parse(m.metadata.creationTimestamp ?? new Date().toISOString());
  if (waited > timeoutMsOf(m)) {
    scope.status(
      failed(
        'Timeout',
        `host ${target} did not get image ${digest} within spec.timeoutSeconds`,
        scope.generation,
      ),
    );
    return { stop: true };
  }
  scope.status((s) => {
    s.progress = { stage: 'image', bytes: 0, updatedAt: new Date().toISOString() };
    setCondition(
      s,
      {
        type: MIGRATED,
        status: 'False',
        reason: 'PullingImage',
        message: `waiting for host ${target} to pull image ${digest} from its peers`,
      },
      scope.generation,
    );
  });
  return { requeueAfterMs: 1000, stop: true };
}

/** Moves the domain and commits (or rolls back). Never throws for a failed move: it ends Failed. */
export async function transfer(c: SourceComponents, scope: MigrationScope, self: string): Promise<void> {
  const m = scope.object;
  const { instance, target, mode, auto } = scope.data.plan!;
  const key = keyOf(instance);
  const id = domainIdOfInstance(instance);
  if (!c.migrations.begin(key, 'out', m.metadata.uid ?? '', { mode, peer: target })) {
    scope.status(failed('AlreadyMoving', `${key} is being moved by another migration`, scope.generation));
    return;
  }
  scope.status((s) => {
    s.phase = 'Running';
    s.sourceHost = self;
    s.targetHost = target;
    s.mode = mode === 'live' ? 'Live' : 'Cold';
    s.startedAt = new Date().toISOString();
    setCondition(
      s,
      { type: MIGRATED, status: 'False', reason: 'Transferring', message: `moving ${key} to host ${target}` },
      scope.generation,
    );
  });
  // Durable before a byte moves: a restarted source finds it Running and settles it.
  await scope.progress();
  const watch = watchPeer(c.isLive, target, () =>
    c.store.get(objectKey(m.kind, scope.key))?.metadata.uid === m.metadata.uid
      ? undefined
      : 'the ServiceMigration was deleted',
  );
  const signal = AbortSignal.any([scope.signal, watch.signal, AbortSignal.timeout(timeoutMsOf(m))]);
  const progress = progressWriter(scope);
  // A live driver calls the commit at its switchover (both copies paused, the target holding all state),
  // so the binding is written before the target's copy runs; a cold driver never calls it.
  let bound: boolean | undefined;
  const commitAtSwitchover = async () => {
    bound = await commit(c, instance, target);
    if (bound) c.log.info(`${key}: bound to host ${target} at the switchover; its copy there may run now`);
    if (!bound) throw new MigrationFailedError('InstanceNotFound', `${key} was deleted while it moved`);
  };
  let report: Awaited<ReturnType<Driver['migrateOut']>>;
  try {
    const peerId = hostNamed(c.store, target)?.status?.peerId ?? '';
    report = await c.driver.migrateOut(id, c.transport(m, { name: target, peerId }), {
      mode: auto ? 'auto' : mode,
      signal,
      onProgress: progress.report,
      commit: commitAtSwitchover,
    });
  } catch (err) {
    if (bound === true) {
      // Committed: the target runs it whatever happened after; never start the source's copy again.
      c.log.warn(
        { err },
        `${key}: moved to ${target}, but the driver failed after the commit: ${(err as Error).message}`,
      );
      await settleCommitted(c, scope, instance, target, {});
      return;
    }
    if (bound === false) return settleDeleted(c, scope, instance);
    const why = signal.aborted ? (signal.reason as Error) : (err as Error);
    const reason = scope.signal.aborted
      ? 'SourceStopping'
      : watch.signal.aborted
        ? c.isLive(target)
          ? 'Cancelled'
          : 'TargetLost'
        : signal.aborted
          ? 'Timeout'
          : 'TransferFailed';
    await rollBack(c, scope, instance, reason, `moving to host ${target} failed: ${why.message}`);
    return;
  } finally {
    watch.stop();
    progress.stop();
  }
  if (bound ?? (await commit(c, instance, target))) {
    await settleCommitted(c, scope, instance, target, report);
    return;
  }
  await settleDeleted(c, scope, instance);
}

/** Deleted while it moved: no copy of it may stay (the target removes its own when it sees this). */
async function settleDeleted(c: SourceComponents, scope: MigrationScope, instance: ServiceInstance) {
  const key = keyOf(instance);
  await c.driver
    .destroy(domainIdOfInstance(instance), { signal: AbortSignal.timeout(60_000) })
    .catch(() => {});
  c.migrations.end(key);
  scope.status(failed('InstanceNotFound', `${key} was deleted while it moved`, scope.generation));
}

/** The commit point: the instance is bound to the target (its status goes with the old binding).
 *  False when the instance is gone (or is another one by now). */
async function commit(c: SourceComponents, instance: ServiceInstance, target: string): Promise<boolean> {
  return c.store.groupCommit(() => {
    const fresh = c.store.get(objectKey(SERVICE_INSTANCE.kind, keyOf(instance)));
    if (!fresh || fresh.metadata.uid !== instance.metadata.uid || fresh.metadata.deletionTimestamp)
      return false;
    c.store.update({ ...fresh, spec: { ...fresh.spec!, host: target } });
    return true;
  });
}

/** After the commit: the source's copy goes, and the migration Succeeded. */
async function settleCommitted(
  c: SourceComponents,
  scope: MigrationScope,
  instance: ServiceInstance,
  target: string,
  report: Parameters<typeof succeeded>[0],
): Promise<void> {
  const key = keyOf(instance);
  const id = domainIdOfInstance(instance);
  try {
    await c.driver.destroy(id, { signal: AbortSignal.timeout(60_000) });
  } catch (err) {
    c.log.warn(
      { err },
      `${key} moved to ${target}, but its old domain ${id} here could not be removed: ${(err as Error).message}`,
    );
  }
  c.migrations.hooks.forget(instance);
  c.migrations.end(key);
  scope.status(
    succeeded(
      report,
      `${key} runs on host ${target}${report.how ? `: ${report.how}` : ''}`,
      scope.generation,
    ),
  );
}

/** Failed is written first (the target removes its copy when it sees it), then the source's copy runs. */
async function rollBack(
  c: SourceComponents,
  scope: MigrationScope,
  instance: ServiceInstance,
  reason: string,
  message: string,
): Promise<void> {
  const key = keyOf(instance);
  scope.status(
    failed(reason, `${message}; ${key} runs on host ${instance.spec?.host} again`, scope.generation),
  );
  await scope.progress();
  const id = domainIdOfInstance(instance);
  try {
    const signal = AbortSignal.timeout(60_000);
    if (await c.driver.inspect(id, { signal })) {
      await c.driver.startDomain(await c.migrations.hooks.domainFor(instance, signal), { signal });
    }
  } catch (err) {
    c.log.error(
      { err },
      `${key}: starting it again after a failed migration failed: ${(err as Error).message}`,
    );
  } finally {
    c.migrations.end(key);
  }
}

/** A Running migration this host was the source of and no longer drives (its xenosd restarted). */
export async function settleOrphaned(c: SourceComponents, scope: MigrationScope): Promise<void> {
  const m = scope.object;
  const instance = instanceOf(c.store, m);
  const target = m.status?.targetHost ?? '';
  const where = migrationRef(m);
  if (!instance) {
    scope.status(failed('InstanceNotFound', `${where}: the instance is gone`, scope.generation));
    return;
  }
  if (instance.spec?.host === target) {
    c.log.info(`${where}: committed before this host restarted; removing the old copy`);
    await settleCommitted(c, scope, instance, target, {});
    return;
  }
  await rollBack(
    c,
    scope,
    instance,
    'SourceRestarted',
    `xenosd on host ${m.status?.sourceHost} restarted during the migration`,
  );
}

/** The driver's reports, queued as status at most every PROGRESS_EVERY_MS and written at once. */
function progressWriter(scope: MigrationScope) {
  let latest: MigrationProgress | undefined;
  let written: MigrationProgress | undefined;
  const timer = setInterval(() => {
    if (!latest || latest === written) return;
    written = latest;
    const p = latest;
    scope.status((s: ServiceMigrationStatus) => {
      const total = p.bytesTotal;
      s.bytesTransferred = p.bytesTransferred;
      s.progress = {
        stage: p.stage,
        bytes: p.bytesTransferred,
        ...(total ? { total, percent: Math.min(100, Math.floor((100 * p.bytesTransferred) / total)) } : {}),
        ...(p.dirtyRateBytesPerSecond !== undefined
          ? { dirtyRateBytesPerSecond: Math.round(p.dirtyRateBytesPerSecond) }
          : {}),
        updatedAt: new Date().toISOString(),
      };
    });
    scope.progress().catch(() => {});
  }, PROGRESS_EVERY_MS);
  return {
    report: (p: MigrationProgress) => {
      latest = { ...p };
    },
    stop: () => clearInterval(timer),
  };
}
