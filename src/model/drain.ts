// A drain's moves: the ServiceMigration that takes one instance off a host being emptied, made alike by
// `xenosctl drain` and by a host that drains itself (controllers/host/auto-drain.ts).

import { SERVICE_MIGRATION } from './kinds.ts';
import { generatedSuffix } from './names.ts';
import type { ServiceInstance } from './service-instance.ts';
import type { ServiceMigration, ServiceMigrationSpec } from './service-migration.ts';

/** The label on the ServiceMigrations a drain creates (`xenosctl drain`, or a host draining itself): the
 *  host it empties. */
export const DRAIN_LABEL = 'xenos.io/drain';

/** The migration that moves `instance` off `host` in a drain: no target (the source picks one by
 *  placement), labelled with the host. */
export function drainMigration(
  instance: ServiceInstance,
  host: string,
  spec: { mode: NonNullable<ServiceMigrationSpec['mode']>; timeoutSeconds: number },
): ServiceMigration {
  return {
    apiVersion: SERVICE_MIGRATION.apiVersion,
    kind: SERVICE_MIGRATION.kind,
    metadata: {
      name: `${instance.metadata.name.slice(0, 40).replace(/[-.]+$/, '')}-drain-${generatedSuffix()}`,
      namespace: instance.metadata.namespace ?? 'default',
      labels: { [DRAIN_LABEL]: host },
    },
    spec: { instanceRef: { name: instance.metadata.name }, ...spec },
  };
}
