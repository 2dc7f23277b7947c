// ServiceMigration: move one instance to another host, live where the driver can (schema now; its
// controller comes in a later issue). crds/servicemigrations.xenos.io.yaml is the source of truth.

import type { BaseStatus, XObject } from './object.ts';

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

export type ServiceMigration = XObject<ServiceMigrationSpec, ServiceMigrationStatus>;
