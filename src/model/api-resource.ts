// How a kind is named and addressed in the API, once for every part that needs it: the names of a kind
// (what a CRD's spec.names and scope say), where its objects live, the printer columns of its tables,
// and the descriptor the API serves each resource from.

/** Where a kind's objects live in the API: `/apis/<group>/<version>/[namespaces/<ns>/]<plural>`.
 *  `group` '' is the core group (`/api/v1`). */
export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

/** Every name of a kind, as its CRD's spec.names (and group, served version and scope) give them. */
export interface KindNames extends ResourceType {
  /** `xenos.io/v1alpha1` (`v1` for the core group). */
  apiVersion: string;
  listKind: string;
  singular: string;
  shortNames: readonly string[];
  categories: readonly string[];
}

/** A column of `kubectl get` (a CRD's additionalPrinterColumns; Tables' columnDefinitions). */
export interface PrinterColumn {
  name: string;
  type: 'integer' | 'number' | 'string' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
  format?: string;
}

/** One resource the API serves: routing, discovery, OpenAPI, Tables and field selectors read this,
 *  so none of them special-cases a kind. */
export interface ApiResource extends KindNames {
  statusSubresource: boolean;
  /** Serves `<plural>/log` (GET, text/plain): the output of the instance's domain. */
  logSubresource: boolean;
  /** Serves `<plural>/scale` (an autoscaling/v1 Scale) when the CRD declares the scale subresource. */
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
  printerColumns: PrinterColumn[];
  /** The openAPIV3Schema (CRD kinds); undefined for Events. */
  schema?: unknown;
  /** Validated by the CRD validator (CRD kinds); Events get a shape check only. */
  crd: boolean;
  /** Field selector paths; beyond `metadata.name|namespace` they are matched in the API layer. */
  selectableFields: readonly string[];
}

/** One entry of a discovery `APIResourceList` on the wire (what `kubectl api-resources` reads). */
export interface DiscoveryResource {
  name: string;
  singularName?: string;
  namespaced: boolean;
  kind: string;
  verbs?: string[];
  shortNames?: string[];
  categories?: string[];
}

export interface DiscoveryResourceList {
  kind: 'APIResourceList';
  apiVersion?: string;
  groupVersion: string;
  resources: DiscoveryResource[];
}
