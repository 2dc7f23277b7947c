// ServiceInstance: one running instance of a template, one domain. crds/serviceinstances.xenos.io.yaml
// is the source of truth for validation; these types describe the same shape.

import type { BaseStatus, XObject } from './object.ts';
import type { ImagePullStatus } from './service-template.ts';

export type RunStrategy = 'Always' | 'RerunOnFailure' | 'Manual' | 'Halted';

/** What happens to an instance whose host stays NotReady (a standalone instance's `spec.failover`, a
 *  deployment's `spec.failover` for its replicas): re-bound to another host after hostDownSeconds. */
export interface FailoverSpec {
  /** Default true. */
  enabled?: boolean;
  /** Seconds after the NotReady verdict on the host; default 30. */
  hostDownSeconds?: number;
  /** At most one copy even in a partition (the minority side stops its copy); default false. */
  singleton?: boolean;
  /** Every this many seconds the instance's host sends a copy of the domain's own disk layer to another
   *  live host (the one failover would pick), which takes the instance over from that copy if its host
   *  dies. Absent: no copies, a failed-over instance starts from the template's image. */
  copyEverySeconds?: number;
}

/** The fencing token of an instance's binding: how many times it was failed over (absent: never). A domain
 *  records the epoch it was started under; a host that finds one older than its instance's stops it. */
export const FAILOVER_EPOCH_ANNOTATION = 'xenos.io/failover-epoch';
/** The host an instance was last failed over from, and when (`<host> <RFC 3339 time>`). */
export const FAILED_OVER_FROM_ANNOTATION = 'xenos.io/failed-over-from';

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
  failover?: FailoverSpec;
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
  disk?: {
    mode: 'Overlay' | 'Reflink' | 'Copy' | 'Qcow2Overlay';
    message: string;
    /** Made from a copy of its disk layer (after a failover), not from the image: which, taken where. */
    fromCopy?: { host: string; takenAt: string };
  };
  /** While the template's image is pulled from peers (phase Pulling). */
  imagePull?: ImagePullStatus;
  /** The last copy of the domain's disk layer this host sent to another (spec.failover.copyEverySeconds). */
  layerCopy?: LayerCopyStatus;
}

/** Where the last copy of an instance's disk layer is kept, and from when. */
export interface LayerCopyStatus {
  /** The host holding it: the one failover prefers. */
  host: string;
  /** When the copy was taken (RFC 3339). */
  takenAt: string;
  bytes: number;
}

export type ServiceInstance = XObject<ServiceInstanceSpec, ServiceInstanceStatus>;
