// The resources this API serves: every kind of the KindRegistry (from crds/) under
// `xenos.io/v1alpha1`, plus core v1 Events. One descriptor per resource carries what routing,
// discovery, OpenAPI, Tables and field selectors need, so those parts never special-case a kind.

import type { ApiResource } from '../model/api-resource.ts';
import { EVENT, SERVICE_INSTANCE } from '../model/kinds.ts';
import type { KindInfo, KindRegistry } from './kinds.ts';

const METADATA_FIELDS = ['metadata.name', 'metadata.namespace'] as const;

export const EVENT_RESOURCE: ApiResource = {
  ...EVENT,
  statusSubresource: false,
  logSubresource: false,
  printerColumns: [
    { name: 'Last Seen', type: 'date', jsonPath: '.lastTimestamp' },
    { name: 'Type', type: 'string', jsonPath: '.type' },
    { name: 'Reason', type: 'string', jsonPath: '.reason' },
    { name: 'Object', type: 'string', jsonPath: '.involvedObject.name' },
    { name: 'Message', type: 'string', jsonPath: '.message' },
  ],
  crd: false,
  selectableFields: [
    ...METADATA_FIELDS,
    'involvedObject.kind',
    'involvedObject.namespace',
    'involvedObject.name',
    'involvedObject.uid',
    'involvedObject.apiVersion',
    'involvedObject.resourceVersion',
    'involvedObject.fieldPath',
    'reason',
    'reportingComponent',
    'source',
    'type',
  ],
};

function fromKind(k: KindInfo): ApiResource {
  return {
    group: k.group,
    version: k.version,
    apiVersion: k.apiVersion,
    kind: k.kind,
    listKind: k.listKind,
    plural: k.plural,
    singular: k.singular,
    shortNames: k.shortNames ?? [],
    categories: k.categories ?? [],
    namespaced: k.namespaced,
    statusSubresource: k.statusSubresource,
    // One domain per instance: its output is the instance's log, as a Pod's containers are a Pod's.
    logSubresource: k.kind === SERVICE_INSTANCE.kind,
    ...(k.scale ? { scale: k.scale } : {}),
    printerColumns: k.printerColumns ?? [],
    schema: k.schema,
    crd: true,
    selectableFields: METADATA_FIELDS,
  };
}

/** Everything served, looked up by group + plural. */
export class ApiResources {
  readonly all: ApiResource[];
  readonly #byPath = new Map<string, ApiResource>();
  readonly #byKind = new Map<string, ApiResource>();

  constructor(registry: KindRegistry) {
    this.all = [...registry.all().map(fromKind), EVENT_RESOURCE];
    for (const r of this.all) {
      this.#byPath.set(`${r.group}/${r.version}/${r.plural}`, r);
      this.#byKind.set(r.kind, r);
    }
  }

  find(group: string, version: string, plural: string): ApiResource | undefined {
    return this.#byPath.get(`${group}/${version}/${plural}`);
  }

  byKind(kind: string): ApiResource | undefined {
    return this.#byKind.get(kind);
  }

  /** The group/versions served besides core v1, e.g. [['xenos.io', 'v1alpha1']]. */
  groupVersions(): { group: string; version: string }[] {
    const seen = new Map<string, { group: string; version: string }>();
    for (const r of this.all)
      if (r.group) seen.set(`${r.group}/${r.version}`, { group: r.group, version: r.version });
    return [...seen.values()];
  }

  inGroupVersion(group: string, version: string): ApiResource[] {
    return this.all.filter((r) => r.group === group && r.version === version);
  }

  /** For the store: is this kind namespaced? */
  namespaced(kind: string): boolean {
    return this.#byKind.get(kind)?.namespaced ?? true;
  }
}
