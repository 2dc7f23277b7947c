// The Xenos resource model as TypeScript types: the object envelope shared by every kind
// (metadata like Kubernetes' ObjectMeta, status conditions) and the spec/status of each kind.
// crds/*.yaml is the source of truth for validation; these types must describe the same shapes.

export const GROUP = 'xenos.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  /** Bumped only when `spec` changes (or on deletion request), like Kubernetes. */
  generation?: number;
  /** Opaque to clients; here a decimal store revision. */
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface BaseStatus {
  observedGeneration?: number;
  phase?: string;
  conditions?: Condition[];
}

/** Any stored object. Kind-specific code narrows `spec`/`status` with the interfaces below. */
export interface XObject<Spec = Record<string, unknown>, Status = BaseStatus> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Spec;
  status?: Status;
}

// ---------------------------------------------------------------------------------------------
// ServiceTemplate: a VM (or process) image plus how to configure new instances of a service type.

export interface ImageSource {
  /** Where to import the image from: a local file or directory path, or an http(s) URL. */
  url?: string;
  path?: string;
  /** `sha256:<hex>` of the image content: of a file's bytes; of a directory's canonical listing (every
   *  entry's type, mode, path and, for files, the SHA-256 of their bytes; no tar), as src/images/digest.ts
   *  documents. */
  digest?: string;
  format?: 'raw' | 'qcow2' | 'directory' | 'tar';
}

export interface BootSpec {
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  firmware?: 'bios' | 'uefi';
  /** Xen guest type. */
  xenType?: 'pv' | 'pvh' | 'hvm';
}

export interface DiskSpec {
  name: string;
  /** `image` = a copy-on-write clone of the template image; `empty` = a new blank disk of `size`. */
  source: 'image' | 'empty';
  size?: string;
  bus?: 'virtio' | 'ide' | 'xvd';
  readOnly?: boolean;
}

export interface NetworkSpec {
  mode: 'user' | 'bridge' | 'none';
  bridge?: string;
}

export interface ProcessSpec {
  command: string[];
  args?: string[];
  env?: { name: string; value: string }[];
  /** Relative to the instance directory (the copy of the image). */
  workingDir?: string;
}

export interface PortSpec {
  name: string;
  /** The port the service listens on inside the domain. For the process driver, the host
   *  allocates a port per instance and passes it as env `XENOS_PORT_<NAME>` (and `PORT` for the first). */
  port: number;
  protocol?: 'TCP' | 'UDP';
  appProtocol?: string;
}

/** A port of `spec.ports` by name, or a port number inside the domain (x-kubernetes-int-or-string). */
export type PortRef = number | string;

export interface HealthCheckSpec {
  tcp?: { port: PortRef };
  http?: { port: PortRef; path?: string };
  exec?: { command: string[] };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
  successThreshold?: number;
}

export interface ParameterSpec {
  name: string;
  description?: string;
  default?: string;
  required?: boolean;
  pattern?: string;
}

export interface DomainShape {
  memory?: string;
  vcpus?: number;
  cpuLimit?: string;
  boot?: BootSpec;
  disks?: DiskSpec[];
  network?: NetworkSpec;
}

export interface ServiceTemplateSpec {
  /** The service type advertised for discovery; defaults to the template's name. */
  serviceType?: string;
  description?: string;
  image: ImageSource;
  domain?: DomainShape;
  process?: ProcessSpec;
  parameters?: ParameterSpec[];
  ports?: PortSpec[];
  healthCheck?: HealthCheckSpec;
}

export interface ServiceTemplateStatus extends BaseStatus {
  digest?: string;
  size?: number;
}

// ---------------------------------------------------------------------------------------------
// ServiceInstance: one running instance of a template, one domain.

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
}

// ---------------------------------------------------------------------------------------------
// ServiceDeployment: N replicas of a template spread over hosts, with failover.

export interface ServiceDeploymentSpec {
  /** Defaulted to 1 by the API (the CRD default), so stored objects always have it. */
  replicas: number;
  template: {
    metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    spec: Omit<ServiceInstanceSpec, 'host'>;
  };
  spread?: { maxPerHost?: number; hostSelector?: Record<string, string> };
  failover?: { enabled?: boolean; hostDownSeconds?: number };
}

export interface ServiceDeploymentStatus extends BaseStatus {
  replicas?: number;
  readyReplicas?: number;
  instances?: string[];
}

// ---------------------------------------------------------------------------------------------
// ServiceMigration: move one instance to another host, live where the driver can.

export interface ServiceMigrationSpec {
  instanceRef: { name: string };
  targetHost: string;
  mode?: 'Auto' | 'Live' | 'Cold';
  timeoutSeconds?: number;
}

export interface ServiceMigrationStatus extends BaseStatus {
  sourceHost?: string;
  mode?: 'Live' | 'Cold';
  startedAt?: string;
  completedAt?: string;
  downtimeMs?: number;
  bytesTransferred?: number;
}

// ---------------------------------------------------------------------------------------------
// Host: one coordinator (cluster-scoped). Spec is what operators set; status is the host's own.

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
  heartbeatTime?: string;
  images?: string[];
}

export type ServiceTemplate = XObject<ServiceTemplateSpec, ServiceTemplateStatus>;
export type ServiceInstance = XObject<ServiceInstanceSpec, ServiceInstanceStatus>;
export type ServiceDeployment = XObject<ServiceDeploymentSpec, ServiceDeploymentStatus>;
export type ServiceMigration = XObject<ServiceMigrationSpec, ServiceMigrationStatus>;
export type Host = XObject<HostSpec, HostStatus>;
