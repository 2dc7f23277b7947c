// What a ServiceInstance offers to discovery, read from its object: service type, readiness and
// endpoints (as `host:port` or the URL it registered). The status publisher puts it in this host's DHT
// records; discovery from the replicated store reads it straight from the objects every host holds.

import type { ServiceInstance } from '../model/service-instance.ts';

/** What an instance record says (payload of `/xenos/inst/...`). */
export interface InstanceRecord {
  host: string;
  namespace: string;
  name: string;
  serviceType: string;
  phase: string;
  ready: boolean;
  endpoints: string[];
}

function endpointsOf(i: ServiceInstance): string[] {
  return (i.status?.endpoints ?? []).map((e) => e.url ?? `${e.address}:${e.port}`);
}

export function instanceRecordOf(i: ServiceInstance, hostName: string): InstanceRecord {
  const ready = i.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  return {
    host: hostName,
    namespace: i.metadata.namespace ?? 'default',
    name: i.metadata.name,
    serviceType: i.status?.serviceType ?? i.spec?.templateRef?.name ?? '',
    phase: i.status?.phase ?? 'Pending',
    ready,
    endpoints: endpointsOf(i),
  };
}
