// What an instance asks of a host and what a host offers, in comparable numbers: the CRDs'
// quantities ("512Mi", "2", "1500m", parsed by src/api/quantity.ts) as bytes and millicores, an instance's request (its own
// spec.resources, else its template's domain shape), and the sum of what a host's instances ask for.

import type { ResourceList } from '../model/host.ts';
import { formatMemoryQuantity, parseCpuQuantity, parseMemoryQuantity } from '../model/quantity.ts';
import type { ServiceInstance } from '../model/service-instance.ts';
import type { ServiceTemplate } from '../model/service-template.ts';

/** Bytes in a memory quantity; NaN when absent or malformed. */
export function parseMemory(q: string | undefined): number {
  return (q == null ? undefined : parseMemoryQuantity(q)) ?? Number.NaN;
}

/** Millicores in a CPU quantity (or a vcpu count); NaN when absent or malformed. */
export function parseCpu(q: string | number | undefined): number {
  if (q == null) return Number.NaN;
  const cores = typeof q === 'number' ? q : parseCpuQuantity(q);
  return cores == null ? Number.NaN : Math.round(cores * 1000);
}

/** Bytes as a quantity for status fields, rounded down to whole MiB above 1 MiB ("512Mi"). */
export function formatMemory(bytes: number): string {
  if (!Number.isFinite(bytes)) return '0';
  return formatMemoryQuantity(bytes >= 2 ** 20 ? Math.floor(bytes / 2 ** 20) * 2 ** 20 : bytes);
}

export function formatCpu(millis: number): string {
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}

/** What one instance needs; a field the instance and its template leave out counts as 0. */
export interface Request {
  memory: number;
  cpuMillis: number;
}

export function requestOf(instance: ServiceInstance, template: ServiceTemplate | undefined): Request {
  const shape = template?.spec?.domain;
  const memory = parseMemory(instance.spec?.resources?.memory ?? shape?.memory);
  const cpu = parseCpu(instance.spec?.resources?.vcpus ?? shape?.vcpus);
  return { memory: Number.isNaN(memory) ? 0 : memory, cpuMillis: Number.isNaN(cpu) ? 0 : cpu };
}

/** A host's allocatable (or capacity) as numbers; an absent limit is unlimited. */
export interface Offer {
  memory: number;
  cpuMillis: number;
  instances: number;
}

export function offerOf(list: ResourceList | undefined): Offer {
  const memory = parseMemory(list?.memory);
  const cpu = parseCpu(list?.cpu);
  return {
    memory: Number.isNaN(memory) ? Number.POSITIVE_INFINITY : memory,
    cpuMillis: Number.isNaN(cpu) ? Number.POSITIVE_INFINITY : cpu,
    instances: list?.instances ?? Number.POSITIVE_INFINITY,
  };
}
