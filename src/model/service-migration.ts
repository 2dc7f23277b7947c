// ServiceMigration: move one instance to another host, live where the driver can (controllers/
// servicemigration carries it out). crds/servicemigrations.xenos.io.yaml is the source of truth.

import type { BaseStatus, XObject } from './object.ts';

export interface ServiceMigrationSpec {
  instanceRef: { name: string };
  /** Empty: the source host picks one by placement. */
  targetHost?: string;
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
  /** spec.targetHost, or the host placement picked. */
  targetHost?: string;
  progress?: MigrationProgressStatus;
}

export interface MigrationProgressStatus {
  stage: 'image' | 'disk' | 'memory' | 'switchover' | 'files';
  bytes: number;
  total?: number;
  percent?: number;
  dirtyRateBytesPerSecond?: number;
  updatedAt: string;
}

export const MIGRATION_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed'] as const;

export type ServiceMigration = XObject<ServiceMigrationSpec, ServiceMigrationStatus>;
