// A ServiceInstance no host fits (its hostSelector names a zone nobody has): pure desired state, so the
// cluster benches time replication alone, with no domain started anywhere.

import type { ServiceInstance } from '../../src/model/service-instance.ts';

export function parkedInstance(name: string): ServiceInstance {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name },
    spec: { templateRef: { name: 'none' }, runStrategy: 'Halted', hostSelector: { zone: 'nowhere' } },
  };
}
