// ServiceTemplate: a VM (or process) image plus how to configure new instances of a service type.
// crds/servicetemplates.xenos.io.yaml is the source of truth for validation; these types describe the
// same shape.

import type { BaseStatus, XObject } from './object.ts';

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
  /** Failures in a row (one per period) after which the domain is restarted; unset: never. */
  restartThreshold?: number;
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

/** Which hosts pull a template's image ahead of need: exactly one of the three (the CRD says so). */
export interface DistributionSpec {
  /** `All`: every host. */
  hosts?: 'All';
  /** This many live, schedulable hosts, by rendezvous hashing of the image digest. */
  count?: number;
  /** The hosts whose labels match all of these. */
  selector?: Record<string, string>;
}

export interface ServiceTemplateSpec {
  /** The service type advertised for discovery; defaults to the template's name. */
  serviceType?: string;
  description?: string;
  image: ImageSource;
  /** Pull the image ahead of need (see DistributionSpec); absent: when an instance is placed on a host. */
  distribution?: DistributionSpec;
  domain?: DomainShape;
  process?: ProcessSpec;
  parameters?: ParameterSpec[];
  ports?: PortSpec[];
  healthCheck?: HealthCheckSpec;
}

/** How far a pull of an image from peers is, on the host pulling it (status.imagePull of templates and
 *  instances while their phase is Pulling; removed when the pull ends). */
export interface ImagePullStatus {
  digest: string;
  host: string;
  /** Verified bytes of the blob on `host`. */
  bytes: number;
  /** Bytes of the whole blob. */
  size: number;
  /** floor(100 * bytes / size). */
  percent: number;
  /** Peers serving chunks to the pull now. */
  holders: number;
  updatedAt?: string;
}

export interface ServiceTemplateStatus extends BaseStatus {
  digest?: string;
  size?: number;
  imagePull?: ImagePullStatus;
}

export type ServiceTemplate = XObject<ServiceTemplateSpec, ServiceTemplateStatus>;

/** The format a template's image has, from its path, as the CRD documents for an empty format. */
export function guessFormat(path: string, isDirectory: boolean): NonNullable<ImageSource['format']> {
  if (isDirectory) return 'directory';
  if (path.endsWith('.qcow2')) return 'qcow2';
  if (path.endsWith('.tar')) return 'tar';
  return 'raw';
}
