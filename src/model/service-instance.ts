// ServiceInstance: one running instance of a template, one domain. crds/serviceinstances.xenos.io.yaml
// is the source of truth for validation; these types describe the same shape.

import type { BaseStatus, XObject } from './object.ts';
import type { ImagePullStatus } from './service-template.ts';

export type RunStrategy = 'Always' | 'RerunOnFailure' | 'Manual' | 'Halted';

export interface ServiceInstanceSpec {
  templateRef: { name: string };
  parameters?: Record<string, string>;
  /** The host that runs it. Empty: the cluster places it (and writes the binding here). */
  host?: string;
  hostSelector?: Record<string, string>;
  runStrategy?: RunStrategy;
  /** Override the template's domain shape. */
  resources?: { memory?: string; vcpus?: number };
  driver?: 'process' | 'qemu' | 'xen';
}

export interface Endpoint {
  name: string;
  address: string;
  port: number;
  protocol: 'TCP' | 'UDP';
  url?: string;
  /** `template` for ports of the template, `registered` for ones the service registered itself. */
  source?: 'template' | 'registered';
}

/** The `source` of the endpoints a service registers itself (the others come from its template). */
export const REGISTERED_SOURCE = 'registered';
/** The ServiceInstance condition in which the service inside the domain reports its own health verdict
 *  (through its instance-scoped token). */
export const SERVICE_HEALTHY = 'ServiceHealthy';

export interface ServiceInstanceStatus extends BaseStatus {
  host?: string;
  domainId?: string;
  driver?: string;
  endpoints?: Endpoint[];
  restarts?: number;
  lastExitCode?: number;
  startedAt?: string;
  serviceType?: string;
  /** How the domain's disk was made from the template image (copy-on-write or a whole copy), and why. */
  disk?: { mode: 'Overlay' | 'Reflink' | 'Copy' | 'Qcow2Overlay'; message: string };
  /** While the template's image is pulled from peers (phase Pulling). */
  imagePull?: ImagePullStatus;
}

export type ServiceInstance = XObject<ServiceInstanceSpec, ServiceInstanceStatus>;
