// The target's side of a migration. Before the transfer: it pulls the template's base image from the
// swarm when it sees a migration addressed to it. During: it accepts the streams only of a Running
// ServiceMigration its store holds that names it as target, from the peer key of the host the instance
// is bound to (waiting a bounded time for replication), and hands them to the driver's migrateIn. After:
// the driver gets a `committed` promise, resolved once the instance is bound here, so a live copy runs on
// the source's word or on the binding if the link broke right after the commit. Then the copy runs but
// may not yet be the instance's (cold) — it waits for the commit (the binding to this host), then
// hands the domain to the ServiceInstance controller as one that arrived; a Failed migration (or none
// within the fence) means the copy is not wanted: removed when Failed, stopped and kept until the
// migration is settled when nothing came. A Failed migration whose copy is still here (this xenosd was
// down when it failed) has it removed when this host reconciles the migration.

import { MigrationRefusedError } from '../../src/cluster/migration/errors.ts';
import type { LocalMigrations } from '../../src/cluster/migration/local-migrations.ts';
import type { IncomingMigrationRequest } from '../../src/cluster/migration/migration-receiver.ts';
import type { MigrationRef } from '../../src/cluster/migration/protocol.ts';
import type { Driver } from '../../src/drivers/driver.ts';
import type { Log } from '../../src/log/logger.ts';
import { HOST, SERVICE_INSTANCE, SERVICE_MIGRATION } from '../../src/model/kinds.ts';
import type { ServiceMigration } from '../../src/model/service-migration.ts';
import type { ReconcileResult } from '../../src/reconcile/controller.ts';
import { keyOf } from '../../src/reconcile/keys.ts';
import type { Store } from '../../src/store/store.ts';
import {
  domainIdOfInstance,
  hostNamed,
  instanceOf,
  migrationRef,
  namespaceOf,
  timeoutMsOf,
  watchPeer,
} from './facts.ts';

export interface TargetComponents {
  store: Store;
  driver: Driver;
  migrations: LocalMigrations;
  /** The membership's view: a silent source ends a receive. */
  isLive(host: string): boolean;
  log: Log;
}

export interface TargetInit {
  hostName: string;
  /** How long a stream's migration may take to reach this host's store (ms). Default 8 s. */
  acceptWaitMs?: number;
  /** After its copy runs, how long this host waits for the binding before it stops the copy (ms).
   *  Default: the migration's timeout. */
  fenceMs?: number;
}

/** The kinds whose changes can settle what the target waits for (the migration, its instance, the
 *  source's Host and its peer id). */
const WATCHED = [SERVICE_MIGRATION.kind, SERVICE_INSTANCE.kind, HOST.kind] as const;

/** `probe()`'s first value, asked now and again at every change of a watched kind in `store` (no timer
 *  polling); undefined once `ms` pass or `signal` aborts first. */
function untilStore<T>(
  store: Store,
  probe: () => T | undefined,
  ms: number,
  signal: AbortSignal,
): Promise<T | undefined> {
  const now = probe();
  if (now !== undefined || signal.aborted) return Promise.resolve(now);
  return new Promise((resolve) => {
    const stops: (() => void)[] = [];
    const finish = (v: T | undefined) => {
      for (const stop of stops) stop();
      resolve(v);
    };
    const check = () => {
      const v = probe();
      if (v !== undefined) finish(v);
    };
    for (const kind of WATCHED) stops.push(store.watch(kind, {}, check));
    if (Number.isFinite(ms)) {
      const timer = setTimeout(() => finish(probe()), ms);
      stops.push(() => clearTimeout(timer));
    }
    const onAbort = () => finish(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    stops.push(() => signal.removeEventListener('abort', onAbort));
  });
}

function migrationOf(store: Store, ref: MigrationRef): ServiceMigration | undefined {
  const m = store.get({ kind: SERVICE_MIGRATION.kind, namespace: ref.namespace, name: ref.name });
  return m?.metadata.uid === ref.uid ? m : undefined;
}

export class MigrationTarget {
  readonly #c: TargetComponents;
  readonly #init: TargetInit;

  constructor(components: TargetComponents, init: TargetInit) {
    this.#c = components;
    this.#init = init;
  }

  /** The receiver's gate: the migration is here, Running, addressed to this host, and `peer` is the key
   *  of the host its instance is bound to. */
  authorize = async (ref: MigrationRef, peer: string, signal: AbortSignal): Promise<void> => {
    const self = this.#init.hostName;
    let why = `${ref.namespace}/${ref.name} (uid ${ref.uid}) is not in this host's store`;
    const ok = await untilStore(
      this.#c.store,
      () => {
        const m = migrationOf(this.#c.store, ref);
        if (!m) return undefined;
        if (m.status?.phase !== 'Running' || m.status.targetHost !== self) {
          why = `${migrationRef(m)} is ${m.status?.phase ?? 'Pending'} with target ${m.status?.targetHost ?? 'none yet'}, not Running to host ${self}`;
          return undefined;
        }
        const source = hostNamed(this.#c.store, instanceOf(this.#c.store, m)?.spec?.host);
        if (source?.status?.peerId !== peer) {
          why = `peer ${peer} is not host ${source?.metadata.name ?? '(none)'}, where the instance is bound`;
          return undefined;
        }
        return true;
      },
      this.#init.acceptWaitMs ?? 8_000,
      signal,
    );
    if (!ok)
      throw new MigrationRefusedError(why.startsWith('peer') ? 'WrongSource' : 'UnknownMigration', why);
  };

  /** Receives the domain, then waits for the commit. */
  accept = async (req: IncomingMigrationRequest): Promise<void> => {
    const { store, driver, migrations, log } = this.#c;
    const m = migrationOf(store, req.migration);
    const instance = m && instanceOf(store, m);
    if (!m || !instance) throw new Error(`ServiceMigration ${req.migration.name} or its instance is gone`);
    const key = keyOf(instance);
    const id = domainIdOfInstance(instance);
    if (!migrations.begin(key, 'in', req.migration.uid)) throw new Error(`${key} is already moving`);
    let arrived = false;
    // Watched from the start: a live driver runs its copy on the source's word OR on the binding, in case
    // the link broke right after the source committed.
    const watching = new AbortController();
    const committed = this.#bound(req.migration, key, watching.signal);
    try {
      // A source that goes silent (a partition, no reset) ends the receive without waiting for TCP.
      const source = watchPeer(this.#c.isLive, instance.spec?.host ?? '');
      const signal = AbortSignal.any([req.signal, source.signal, AbortSignal.timeout(timeoutMsOf(m))]);
      try {
        const spec = await migrations.hooks.domainFor(instance, signal);
        await driver.migrateIn(spec, req.incoming, { signal, committed });
      } catch (err) {
        await this.#remove(m, id, `receiving failed: ${(err as Error).message}`);
        throw err;
      } finally {
        source.stop();
      }
      const outcome = await this.#awaitCommit(req.migration, key);
      if (outcome === 'bound') {
        arrived = true;
        log.info(`${migrationRef(m)}: ${key} runs here now`);
      } else if (outcome === 'failed') await this.#remove(m, id, 'the migration failed');
      else if (outcome === 'fenced') {
        log.warn(
          `${migrationRef(m)}: no commit came; stopping the received copy of ${key} (kept until it is settled)`,
        );
        await driver.stopDomain(id, { signal: AbortSignal.timeout(60_000) }).catch(() => {});
      }
    } finally {
      watching.abort();
      migrations.end(key, { arrived });
    }
  };

  /** Bound here, failed (or gone), fenced (no word within the fence), or this host stops. */
  async #awaitCommit(ref: MigrationRef, key: string): Promise<'bound' | 'failed' | 'fenced' | 'stopping'> {
    const m = migrationOf(this.#c.store, ref);
    const fence = this.#init.fenceMs ?? (m ? timeoutMsOf(m) : 60_000);
    const never = new AbortController().signal;
    const outcome = await untilStore(this.#c.store, () => this.#settled(ref, key), fence, never);
    return outcome ?? 'fenced';
  }

  /** Resolves once the instance is bound to this host; never resolves if the migration fails or is gone
   *  first, or `signal` ends the watch. */
  #bound(ref: MigrationRef, key: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      untilStore(this.#c.store, () => this.#settled(ref, key), Number.POSITIVE_INFINITY, signal).then(
        (outcome) => {
          if (outcome === 'bound') resolve();
        },
      );
    });
  }

  /** What the store says of a received migration: bound here, failed (or gone), or undecided. */
  #settled(ref: MigrationRef, key: string): 'bound' | 'failed' | undefined {
    const now = migrationOf(this.#c.store, ref);
    const instance = now && instanceOf(this.#c.store, now);
    if (!now || !instance || keyOf(instance) !== key) return 'failed';
    if (instance.spec?.host === this.#init.hostName) return 'bound';
    if (now.status?.phase === 'Failed') return 'failed';
    return undefined;
  }

  /** Removes this host's copy of the instance — only while the instance is bound elsewhere. */
  async #remove(m: ServiceMigration, id: string, why: string): Promise<void> {
    const instance = instanceOf(this.#c.store, m);
    if (instance?.spec?.host === this.#init.hostName) return;
    this.#c.log.info(`${migrationRef(m)}: removing the received copy ${id}: ${why}`);
    await this.#c.driver.destroy(id, { signal: AbortSignal.timeout(60_000) }).catch((err: Error) => {
      this.#c.log.warn({ err }, `removing ${id} failed: ${err.message}`);
    });
  }

  /** What this host does for a migration addressed to it, when it reconciles it: pull the image ahead;
   *  remove a copy left by one that failed while this xenosd was down. */
  async duties(m: ServiceMigration, signal: AbortSignal): Promise<ReconcileResult | undefined> {
    const { store, driver, migrations } = this.#c;
    const self = this.#init.hostName;
    const instance = instanceOf(store, m);
    if (!instance || instance.spec?.host === self) return undefined;
    const phase = m.status?.phase ?? 'Pending';
    if (phase === 'Pending' || phase === 'Running') {
      const image = await migrations.hooks.imageHere(instance, signal).catch((err: Error) => ({
        here: false,
        error: err,
      }));
      return image.here ? undefined : { requeueAfterMs: 1000 };
    }
    if (phase !== 'Failed' || migrations.moving(keyOf(instance))) return undefined;
    const another = store
      .list(SERVICE_MIGRATION.kind, { namespace: namespaceOf(m) })
      .items.some(
        (o) =>
          o.metadata.uid !== m.metadata.uid &&
          o.spec?.instanceRef?.name === instance.metadata.name &&
          o.status?.targetHost === self &&
          (o.status?.phase === 'Running' || o.status?.phase === 'Pending' || !o.status?.phase),
      );
    // Also what a receive cut short left (a driver's staging files are no domain yet): destroy is idempotent.
    const id = domainIdOfInstance(instance);
    if (!another) {
      const found = await driver.inspect(id, { signal });
      if (found) await this.#remove(m, id, 'the migration failed while this host was away');
      else await driver.destroy(id, { signal });
    }
    return undefined;
  }
}
