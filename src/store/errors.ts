// Errors the desired-state store throws. Each carries the HTTP `code` and Kubernetes Status
// `reason` the API answers with, and the object it is about, so the API maps them without parsing
// messages. Messages follow the Kubernetes wording that clients and people already know.

/** The lower-case plural Kubernetes uses in messages and URLs: ServiceInstance → serviceinstances. */
export function resourceName(kind: string): string {
  return kind.toLowerCase() + 's';
}

/** Where an error is about one object. `namespace` is '' for cluster-scoped kinds. */
export interface ErrorObjectRef {
  kind: string;
  namespace: string;
  name: string;
}

export class StoreError extends Error {
  /** HTTP status code for the API. */
  readonly code: number;
  /** Kubernetes Status `reason`. */
  readonly reason: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly objectName?: string;

  constructor(code: number, reason: string, message: string, ref?: ErrorObjectRef) {
    super(message);
    this.name = 'StoreError';
    this.code = code;
    this.reason = reason;
    this.kind = ref?.kind;
    this.namespace = ref?.namespace;
    this.objectName = ref?.name;
  }
}

/** 404: the object does not exist (tombstones count as absent). */
export class NotFoundError extends StoreError {
  constructor(ref: ErrorObjectRef) {
    super(404, 'NotFound', `${resourceName(ref.kind)} "${ref.name}" not found${inNamespace(ref)}`, ref);
    this.name = 'NotFoundError';
  }
}

/** 409: create of an object that already exists. */
export class AlreadyExistsError extends StoreError {
  constructor(ref: ErrorObjectRef) {
    super(
      409,
      'AlreadyExists',
      `${resourceName(ref.kind)} "${ref.name}" already exists${inNamespace(ref)}; ` +
        'update it instead, or delete it first',
      ref,
    );
    this.name = 'AlreadyExistsError';
  }
}

/** 409: a stale resourceVersion on update, or a failed delete precondition. */
export class ConflictError extends StoreError {
  constructor(ref: ErrorObjectRef, detail?: string) {
    super(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${resourceName(ref.kind)} "${ref.name}": ` +
        (detail ??
          'the object has been modified; please apply your changes to the latest version and try again'),
      ref,
    );
    this.name = 'ConflictError';
  }
}

/** 410: a watch asked for changes older than the history this process still keeps. */
export class ExpiredError extends StoreError {
  readonly requested: string;
  readonly oldest: string;

  constructor(requested: string, oldest: string) {
    super(
      410,
      'Expired',
      `too old resource version: ${requested} (${oldest}); list again and watch from the list's resourceVersion`,
    );
    this.name = 'ExpiredError';
    this.requested = requested;
    this.oldest = oldest;
  }
}

/** 400: a request the store cannot make sense of (a bad continue token, resourceVersion or object). */
export class BadRequestError extends StoreError {
  constructor(message: string, ref?: ErrorObjectRef) {
    super(400, 'BadRequest', message, ref);
    this.name = 'BadRequestError';
  }
}

/** 413: a write whose stored object would be larger than MAX_OBJECT_BYTES (limits.ts), the size every
 *  host's replication also carries: nothing the API accepts can be stuck on one host. */
export class ObjectTooLargeError extends StoreError {
  readonly bytes: number;
  readonly limit: number;

  constructor(ref: ErrorObjectRef, bytes: number, limit: number) {
    super(
      413,
      'RequestEntityTooLarge',
      `${resourceName(ref.kind)} "${ref.name}"${inNamespace(ref)} would be ${bytes} bytes stored, over the limit ` +
        `of ${limit} bytes for one object; keep large data out of objects (an image, a file the template points at)`,
      ref,
    );
    this.name = 'ObjectTooLargeError';
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** 400: a label or field selector that does not parse, or names a field that cannot be selected on. */
export class InvalidSelectorError extends BadRequestError {
  readonly selector: string;

  constructor(selector: string, detail: string) {
    super(`invalid selector "${selector}": ${detail}`);
    this.name = 'InvalidSelectorError';
    this.selector = selector;
  }
}

function inNamespace(ref: ErrorObjectRef): string {
  return ref.namespace ? ` in namespace "${ref.namespace}"` : '';
}

/** 403: this host may not write that part of the object (the status of a Host or an instance another host owns). */
export class ForbiddenError extends StoreError {
  constructor(ref: ErrorObjectRef, detail: string) {
    super(403, 'Forbidden', `${resourceName(ref.kind)} "${ref.name}"${inNamespace(ref)}: ${detail}`, ref);
    this.name = 'ForbiddenError';
  }
}

/** Why a row (or a part of it) from a peer was refused; the names are the `reason` label of the refusal counter. */
export const ROW_REFUSAL_REASONS = [
  'malformed',
  'too_large',
  'schema',
  'clock_skew',
  'unsigned',
  'bad_signature',
  'writer_mismatch',
  'not_permitted',
] as const;
export type RowRefusalReason = (typeof ROW_REFUSAL_REASONS)[number];

/** A row, or one part of it, from a peer that this host does not take. Nothing of the refused part is stored
 *  and this host's clock did not move for it. */
export class RowRefusedError extends Error {
  readonly reason: RowRefusalReason;
  readonly part: 'main' | 'status' | undefined;

  constructor(reason: RowRefusalReason, message: string, part?: 'main' | 'status') {
    super(part ? `${part} part: ${message}` : message);
    this.name = 'RowRefusedError';
    this.reason = reason;
    this.part = part;
  }
}

/** This host's name is bound to another peer's key in the store: another host of the cluster has that name. */
export class HostNameTakenError extends Error {
  readonly hostName: string;
  readonly holder: string;

  constructor(hostName: string, holder: string, self: string, via?: string) {
    super(
      `host name ${JSON.stringify(hostName)} is already held by peer ${holder} in this cluster` +
        `${via ? ` (as peer ${via} reports)` : ''}; this host is peer ${self}. Start it with another --host-name ` +
        "(the default is the machine's hostname), or with the data directory (p2p.key) of the host that had the name",
    );
    this.name = 'HostNameTakenError';
    this.hostName = hostName;
    this.holder = holder;
  }
}
