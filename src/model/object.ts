// The object envelope every Xenos kind shares, as Kubernetes' apimachinery has it: ObjectMeta, owner
// references, status conditions, and `XObject<Spec, Status>`, generic over a kind's spec and status so
// code that knows the kind reads typed fields and code that does not (the store, the API) sees `unknown`.

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
  /** Which field manager owns which fields (the API keeps it; src/api/field-managers.ts). */
  managedFields?: ManagedFieldsEntry[];
}

/** One field manager's fields, in Kubernetes' FieldsV1 format (`{"f:spec":{"f:replicas":{}}}`). */
export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Record<string, unknown>;
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** What every kind's status has (the conditions helper of src/reconcile writes it). */
export interface BaseStatus {
  observedGeneration?: number;
  phase?: string;
  conditions?: Condition[];
}

/**
 * A stored object. Kind-specific code uses the per-kind aliases (`ServiceInstance`, `Host`, ... in
 * this folder); `XObject` alone is any kind, with a spec the code does not know. Every per-kind object
 * is an `XObject`, so generic code (the store, the API, keys, events) takes them without casts.
 */
export interface XObject<Spec = unknown, Status extends BaseStatus = BaseStatus> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Spec;
  status?: Status;
}

/** A reference to an object of any kind, as Events and owner lookups carry it (core v1 ObjectReference). */
export interface ObjectReference {
  apiVersion?: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  fieldPath?: string;
}
