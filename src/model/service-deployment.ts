// ServiceDeployment: N replicas of a template spread over hosts (controllers/servicedeployment; failover of
// a NotReady host's replicas: controllers/host/failover.ts). crds/servicedeployments.xenos.io.yaml is the
// source of truth.

import type { BaseStatus, XObject } from './object.ts';
import type { FailoverSpec, ServiceInstanceSpec } from './service-instance.ts';

export interface ServiceDeploymentSpec {
  /** Defaulted to 1 by the API (the CRD default), so stored objects always have it. */
  replicas: number;
  template: {
    metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    spec: Omit<ServiceInstanceSpec, 'host' | 'failover'>;
  };
  /** Replacement when the template changes: maxSurge (default 1) over replicas, maxUnavailable (default 0). */
  strategy?: { maxSurge?: number; maxUnavailable?: number };
  spread?: { maxPerHost?: number; hostSelector?: Record<string, string> };
  failover?: FailoverSpec;
}

export interface ServiceDeploymentStatus extends BaseStatus {
  replicas?: number;
  readyReplicas?: number;
  /** Instances made from the current template. */
  updatedReplicas?: number;
  instances?: string[];
}

export type ServiceDeployment = XObject<ServiceDeploymentSpec, ServiceDeploymentStatus>;
