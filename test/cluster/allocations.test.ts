// HostAllocations: what each host has bound, kept from informer changes — moved, deleted, re-bound —
// and a template's shape read when the sum is taken, so a template that changes needs no re-indexing.

import { describe, expect, it } from 'vitest';
import { HostAllocations } from '../../src/cluster/allocations.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import type { ServiceTemplate } from '../../src/model/service-template.ts';

const MI = 2 ** 20;

function instance(name: string, host: string | undefined, memory?: string): ServiceInstance {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name, namespace: 'default' },
    spec: {
      templateRef: { name: 'web' },
      ...(host ? { host } : {}),
      ...(memory ? { resources: { memory } } : {}),
    },
  } as ServiceInstance;
}

describe('HostAllocations', () => {
  it('follows binds, moves and deletes, and reads the template when it sums', () => {
    let templateMemory = '64Mi';
    const templateOf = () => ({ spec: { domain: { memory: templateMemory } } }) as unknown as ServiceTemplate;
    const a = new HostAllocations();
    a.apply({ type: 'ADDED', object: instance('x', 'h1') });
    a.apply({ type: 'ADDED', object: instance('y', 'h1', '128Mi') });
    a.apply({ type: 'ADDED', object: instance('z', undefined) });
    expect(a.allocated('h1', templateOf)).toEqual({ memory: 192 * MI, cpuMillis: 0, instances: 2 });
    expect(a.allocated('h1', templateOf, 'default/y')).toEqual({
      memory: 64 * MI,
      cpuMillis: 0,
      instances: 1,
    });

    templateMemory = '256Mi'; // a template change: no event needed
    expect(a.allocated('h1', templateOf).memory).toBe(384 * MI);

    a.apply({ type: 'MODIFIED', object: instance('x', 'h2'), previous: instance('x', 'h1') });
    a.apply({ type: 'MODIFIED', object: instance('z', 'h2'), previous: instance('z', undefined) });
    expect(a.count('h1')).toBe(1);
    expect(a.allocated('h2', templateOf)).toEqual({ memory: 512 * MI, cpuMillis: 0, instances: 2 });

    a.apply({ type: 'DELETED', object: instance('x', 'h2') });
    a.apply({ type: 'DELETED', object: instance('y', 'h1', '128Mi') });
    expect(a.count('h1')).toBe(0);
    expect(a.allocated('h2', templateOf)).toEqual({ memory: 256 * MI, cpuMillis: 0, instances: 1 });
  });
});
