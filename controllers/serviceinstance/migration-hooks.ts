// What this host's ServiceInstance controller lends the ServiceMigration controller of the same host
// (InstanceHooks, wired by the daemon through LocalMigrations): the domain this host would run for an
// instance — its template's image, this host's environment and token — whether that image is here
// (starting a pull from peers if not), letting go of a domain machine without touching the domain, and
// reconciling an instance again once a migration is done with it.

import type { InstanceHooks } from '../../src/cluster/migration/local-migrations.ts';
import { SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import type { ServiceTemplate } from '../../src/model/service-template.ts';
import type { Store } from '../../src/store/store.ts';
import type { InstanceCredentials } from './credentials.ts';
import { identityOf, instanceRef } from './domain-spec.ts';
import type { DomainMachines } from './machines.ts';
import { desiredDomainOf, type LocalImages } from './reconcile-steps.ts';

export interface MigrationHooksComponents {
  store: Store;
  images: LocalImages;
  machines: DomainMachines;
  credentials?: InstanceCredentials;
  enqueue(key: string): void;
}

function templateOf(store: Store, instance: ServiceInstance): { template: ServiceTemplate; digest: string } {
  const namespace = instance.metadata.namespace ?? 'default';
  const name = instance.spec?.templateRef?.name ?? '';
  const template = store.get({ kind: SERVICE_TEMPLATE.kind, namespace, name });
  const digest = template?.spec?.image?.digest ?? template?.status?.digest;
  if (!template || !digest)
    throw new Error(
      `${instanceRef(instance)}: ServiceTemplate ${namespace}/${name} is missing or has no image yet`,
    );
  return { template, digest };
}

export function migrationHooks(
  c: MigrationHooksComponents,
  init: { hostName: string; apiUrl?: string },
): InstanceHooks {
  return {
    async domainFor(instance, signal) {
      const { template, digest } = templateOf(c.store, instance);
      const imagePath = await c.images.locate(digest, { signal });
      if (!imagePath)
        throw new Error(`image ${digest} of ${instanceRef(instance)} is not on host ${init.hostName}`);
      return desiredDomainOf(c, init, instance, template, imagePath).spec;
    },
    async imageHere(instance, signal) {
      const { digest } = templateOf(c.store, instance);
      if (await c.images.locate(digest, { signal })) return { here: true };
      const pull = c.images.fetch?.(digest);
      if (!pull)
        return { here: false, error: new Error(`host ${init.hostName} cannot pull image ${digest}`) };
      return { here: false, error: pull.error };
    },
    detach: (key) => c.machines.detach(key),
    requeue: (key) => c.enqueue(key),
    forget: (instance) => c.credentials?.revoke(identityOf(instance)),
  };
}
