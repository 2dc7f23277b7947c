// What both sides of a ServiceMigration read from the replicated store: the migration's instance, its
// key and domain id, the Host objects involved, the migration's deadline, and the status changes every
// outcome makes (Failed with a reason, Succeeded with the driver's figures).

import { domainIdFor, type MigrationReport } from '../../src/drivers/driver.ts';
import type { Host } from '../../src/model/host.ts';
import { HOST, SERVICE_INSTANCE } from '../../src/model/kinds.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import type { ServiceMigration, ServiceMigrationStatus } from '../../src/model/service-migration.ts';
import { setCondition } from '../../src/reconcile/conditions.ts';
import type { Store } from '../../src/store/store.ts';

export const DEFAULT_TIMEOUT_SECONDS = 300;
/** The condition that says where a migration is (True once it succeeded). */
export const MIGRATED = 'Migrated';

export function namespaceOf(m: { metadata: { namespace?: string } }): string {
  return m.metadata.namespace ?? 'default';
}

export function migrationRef(m: ServiceMigration): string {
  return `ServiceMigration ${namespaceOf(m)}/${m.metadata.name}`;
}

export function instanceOf(store: Store, m: ServiceMigration): ServiceInstance | undefined {
  const name = m.spec?.instanceRef?.name ?? '';
  return store.get({ kind: SERVICE_INSTANCE.kind, namespace: namespaceOf(m), name });
}

export function instanceKey(m: ServiceMigration): string {
  return `${namespaceOf(m)}/${m.spec?.instanceRef?.name ?? ''}`;
}

export function domainIdOfInstance(instance: ServiceInstance): string {
  return domainIdFor({
    namespace: namespaceOf(instance),
    name: instance.metadata.name,
    uid: instance.metadata.uid ?? '',
  });
}

export function hostNamed(store: Store, name: string | undefined): Host | undefined {
  return name ? store.get({ kind: HOST.kind, namespace: '', name }) : undefined;
}

export function timeoutMsOf(m: ServiceMigration): number {
  return (m.spec?.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000;
}

/** The migration is over here: phase Failed, the reason in Migrated, the time it ended. */
export function failed(reason: string, message: string, generation: number) {
  return (s: ServiceMigrationStatus) => {
    s.phase = 'Failed';
    s.completedAt ??= new Date().toISOString();
    setCondition(s, { type: MIGRATED, status: 'False', reason, message }, generation);
  };
}

export function succeeded(report: Partial<MigrationReport>, message: string, generation: number) {
  return (s: ServiceMigrationStatus) => {
    s.phase = 'Succeeded';
    s.completedAt = new Date().toISOString();
    if (report.mode) s.mode = report.mode === 'live' ? 'Live' : 'Cold';
    if (report.downtimeMs !== undefined) s.downtimeMs = Math.max(0, Math.round(report.downtimeMs));
    if (report.bytesTransferred !== undefined) {
      s.bytesTransferred = report.bytesTransferred;
      if (s.progress) s.progress = { ...s.progress, bytes: report.bytesTransferred, percent: 100 };
    }
    setCondition(s, { type: MIGRATED, status: 'True', reason: 'Migrated', message }, generation);
  };
}
