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
  /** Complete images this host holds and serves (written only when the set changes). */
  images?: HostImage[];
}

/** An image a host holds complete: its digest, the digest of the manifest it cuts the blob by, the blob size. */
export interface HostImage {
  digest: string;
  manifest: string;
  size: number;
}

export type Host = XObject<HostSpec, HostStatus>;
