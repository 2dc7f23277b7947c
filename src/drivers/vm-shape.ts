// What every VM driver (QEMU, Xen) derives the same way from a domain spec: the guest's size, its MAC
// address, and its kernel command line. Pure functions: the same spec gives the same guest on every host,
// which a migration's destination relies on.

import { createHash } from 'node:crypto';
import type { DomainSpec } from './driver.ts';
import { expandString, expansionTable } from './params.ts';

const MiB = 1024 * 1024;

/** A guest without `resources.memoryBytes`. */
export const DEFAULT_MEMORY_BYTES = 256 * MiB;

/** Memory in MiB (rounded up, at least 16) and vCPUs (at least 1). */
export function guestSize(spec: DomainSpec): { memoryMiB: number; vcpus: number } {
  const bytes = spec.resources?.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  return { memoryMiB: Math.max(16, Math.ceil(bytes / MiB)), vcpus: Math.max(1, spec.resources?.vcpus ?? 1) };
}

/** A MAC address derived from the domain id, so a restarted or moved guest keeps it: under `oui`, the
 *  first three bytes (QEMU's 52:54:00, Xen's 00:16:3e), then three bytes of the id's SHA-256. */
export function macAddress(domainId: string, oui = '52:54:00'): string {
  const h = createHash('sha256').update(domainId).digest();
  return [oui, ...[h[0], h[1], h[2]].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** The kernel command line with `${...}` expanded, and `console=<console>` added when the template did
 *  not choose a console itself. */
export function kernelCmdline(spec: DomainSpec, ports: Record<string, number>, console = 'ttyS0'): string {
  const table = expansionTable({
    params: spec.parameters,
    ports,
    instance: spec.instance,
    domain: { id: spec.id },
  });
  const cmdline = expandString(spec.boot?.cmdline ?? '', table, 'spec.domain.boot.cmdline').trim();
  return /(^|\s)console=/.test(cmdline) ? cmdline : `${cmdline} console=${console}`.trim();
}
