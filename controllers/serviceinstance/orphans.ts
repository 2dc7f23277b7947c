// After a coordinator restart: the domains the driver holds whose ServiceInstance is gone, was replaced
// (another uid), now lives on another host, or failed over since the domain was made (an older failover
// epoch: a stale copy) are stopped and destroyed; the keys of the rest are queued, so their machines adopt
// them. The domains of instances that fail over are swept only once the store has caught up with the
// cluster (the caller passes `which` for each of the two sweeps). A domain whose instance is moving (a migration not settled yet) is left
// to the ServiceMigration controller.

import { failoverEpoch } from '../../src/cluster/failover.ts';
import type { LocalMigrations } from '../../src/cluster/migration/local-migrations.ts';
import type { DomainInfo, Driver } from '../../src/drivers/driver.ts';
import type { Log } from '../../src/log/logger.ts';
import { SERVICE_INSTANCE } from '../../src/model/kinds.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import { objectKey } from '../../src/reconcile/keys.ts';
import type { Store } from '../../src/store/store.ts';
import { teardownDomain } from './actors.ts';

export interface SweepComponents {
  store: Store;
  driver: Driver;
  log: Log;
  /** Queue the key of an instance whose domain is here. */
  enqueue(key: string): void;
  migrations?: Pick<LocalMigrations, 'protects'>;
}

export async function sweepOrphans(
  c: SweepComponents,
  opts: {
    hostName: string;
    signal: AbortSignal;
    stopGraceMs?: number;
    /** Which domains this sweep looks at, by their instance (undefined: gone); default all. */
    which?: (instance: ServiceInstance | undefined) => boolean;
  },
): Promise<void> {
  const domains: DomainInfo[] = await c.driver.list({ signal: opts.signal });
  for (const d of domains) {
    const key = d.instance.namespace ? `${d.instance.namespace}/${d.instance.name}` : d.instance.name;
    const instance = c.store.get(objectKey(SERVICE_INSTANCE.kind, key));
    if (opts.which && !opts.which(instance)) continue;
    const host = instance?.spec?.host;
    if (instance && instance.metadata.uid === d.instance.uid && c.migrations?.protects(instance)) continue;
    const stale = instance && (d.instance.epoch ?? 0) < failoverEpoch(instance);
    if (instance && instance.metadata.uid === d.instance.uid && (!host || host === opts.hostName) && !stale) {
      c.enqueue(key);
      continue;
    }
    const why = !instance
      ? 'no longer exists'
      : stale
        ? `failed over since it was started here (its epoch ${d.instance.epoch ?? 0}, the instance's ${failoverEpoch(instance)}): a stale copy`
        : 'now lives elsewhere or has another uid';
    c.log.info(
      `domain ${d.id}: its ServiceInstance ${key} (uid ${d.instance.uid}) ${why}; stopping and destroying it`,
    );
    await teardownDomain(c.driver, d.id, { signal: opts.signal, graceMs: opts.stopGraceMs });
  }
}
