// The kinds Xenos serves, named once: the API group and version, and for every kind its kind, plural,
// singular, short names, list kind, categories and scope. crds/ is the source of truth for schemas; the
// kind registry (src/api/kinds.ts) refuses a CRD whose names differ from these, so the two cannot drift.
// `ObjectOf<K>` maps a kind's name to its typed object, which lets the store hand back a `Host` for
// `{ kind: 'Host' }` without a cast.

import type { KindNames } from './api-resource.ts';
import type { CoreEvent } from './event.ts';
import type { Host } from './host.ts';
import type { ManifestSource } from './manifest-source.ts';
import type { XObject } from './object.ts';
import type { ServiceDeployment } from './service-deployment.ts';
import type { ServiceInstance } from './service-instance.ts';
import type { ServiceMigration } from './service-migration.ts';
import type { ServiceTemplate } from './service-template.ts';

export const GROUP = 'xenos.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}` as const;

const XENOS = { group: GROUP, version: VERSION, apiVersion: API_VERSION } as const;

export const SERVICE_TEMPLATE = {
  ...XENOS,
  kind: 'ServiceTemplate',
  listKind: 'ServiceTemplateList',
  plural: 'servicetemplates',
  singular: 'servicetemplate',
  shortNames: ['st'],
  categories: ['all', 'xenos'],
  namespaced: true,
} as const satisfies KindNames;

export const SERVICE_INSTANCE = {
  ...XENOS,
  kind: 'ServiceInstance',
  listKind: 'ServiceInstanceList',
  plural: 'serviceinstances',
  singular: 'serviceinstance',
  shortNames: ['si'],
  categories: ['all', 'xenos'],
  namespaced: true,
} as const satisfies KindNames;

export const SERVICE_DEPLOYMENT = {
  ...XENOS,
  kind: 'ServiceDeployment',
  listKind: 'ServiceDeploymentList',
  plural: 'servicedeployments',
  singular: 'servicedeployment',
  shortNames: ['sd'],
  categories: ['all', 'xenos'],
  namespaced: true,
} as const satisfies KindNames;

export const SERVICE_MIGRATION = {
  ...XENOS,
  kind: 'ServiceMigration',
  listKind: 'ServiceMigrationList',
  plural: 'servicemigrations',
  singular: 'servicemigration',
  shortNames: ['smig'],
  categories: ['all', 'xenos'],
  namespaced: true,
} as const satisfies KindNames;

export const HOST = {
  ...XENOS,
  kind: 'Host',
  listKind: 'HostList',
  plural: 'hosts',
  singular: 'host',
  shortNames: ['ho'],
  categories: ['xenos'],
  namespaced: false,
} as const satisfies KindNames;

export const MANIFEST_SOURCE = {
  ...XENOS,
  kind: 'ManifestSource',
  listKind: 'ManifestSourceList',
  plural: 'manifestsources',
  singular: 'manifestsource',
  shortNames: ['ms'],
  categories: ['xenos'],
  namespaced: false,
} as const satisfies KindNames;

/** Core v1 Events (the core group, '' ; served beside the Xenos kinds). */
export const EVENT = {
  group: '',
  version: 'v1',
  apiVersion: 'v1',
  kind: 'Event',
  listKind: 'EventList',
  plural: 'events',
  singular: 'event',
  shortNames: ['ev'],
  categories: [],
  namespaced: true,
} as const satisfies KindNames;

/** The Xenos kinds (crds/ defines one CRD for each). */
export const XENOS_KINDS: readonly KindNames[] = [
  SERVICE_TEMPLATE,
  SERVICE_INSTANCE,
  SERVICE_DEPLOYMENT,
  SERVICE_MIGRATION,
  HOST,
  MANIFEST_SOURCE,
];

/** A kind's name → its typed object. */
export interface KindMap {
  ServiceTemplate: ServiceTemplate;
  ServiceInstance: ServiceInstance;
  ServiceDeployment: ServiceDeployment;
  ServiceMigration: ServiceMigration;
  Host: Host;
  ManifestSource: ManifestSource;
  Event: CoreEvent;
}

export type KnownKind = keyof KindMap;

/** The typed object of kind `K`; any `XObject` for a kind not in KindMap (or a plain `string`). */
export type ObjectOf<K extends string> = K extends KnownKind ? KindMap[K] : XObject;
