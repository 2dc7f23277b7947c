// Host: one coordinator (cluster-scoped). Spec is what operators set; status is the host's own.
// crds/hosts.xenos.io.yaml is the source of truth for validation.

import type { BaseStatus, XObject } from './object.ts';

export interface HostSpec {
  unschedulable?: boolean;
  drain?: boolean;
}

export interface ResourceList {
  cpu?: string;
  memory?: string;
  instances?: number;
}

export interface HostStatus extends BaseStatus {
  capacity?: ResourceList;
  allocatable?: ResourceList;
  allocated?: ResourceList;
  driver?: string;
  drivers?: string[];
  capabilities?: string[];
  addresses?: { api?: string; p2p?: string[] };
  peerId?: string;
  version?: string;
  /** No longer written: liveness comes from the membership protocol (src/p2p/membership), not rows. */
  heartbeatTime?: string;
  /** The images this host holds complete (written by the host when the set changes, never as progress). */
  images?: HostImage[];
}

/** One image a host holds: what a puller needs to trust a manifest fetched from any holder. */
export interface HostImage {
  /** The image digest (`spec.image.digest` of the templates that use it). */
  digest: string;
  /** sha256 of the exact manifest bytes this host serves (src/images/manifest.ts). */
  manifest: string;
  /** Bytes of the blob (what travels). */
  size: number;
  kind?: 'file' | 'directory';
}

export type Host = XObject<HostSpec, HostStatus>;

/** Host conditions that are True when the host's health has degraded (src/daemon/host-health.ts). */
export const MEMORY_PRESSURE = 'MemoryPressure';
export const DISK_PRESSURE = 'DiskPressure';
export const HEALTH_CHECK_FAILING = 'HealthCheckFailing';
export const DEGRADED_CONDITIONS = [MEMORY_PRESSURE, DISK_PRESSURE, HEALTH_CHECK_FAILING] as const;

/** On a Host that drained itself (--auto-drain): when, and which condition made it (`<RFC 3339> <type>:
 *  <message>`). The host does not drain itself again for the same degradation once uncordoned. */
export const AUTO_DRAINED_ANNOTATION = 'xenos.io/auto-drained';
