// Kubernetes `Status` objects for every error the HTTP API returns, and the mapping from store,
// validation and parsing errors to them. Handlers throw `ApiError`; the server turns it into a
// response, so no handler writes an error body by hand.

import { StoreError } from '../store/errors.ts';

export interface StatusCause {
  reason?: string;
  field?: string;
  message: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  apiVersion: 'v1';
  kind: 'Status';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** An error with the HTTP code and Kubernetes reason it is answered with. */
export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details?: StatusDetails;
  /** Extra response headers, e.g. `Allow` for 405. */
  readonly headers?: Record<string, string>;

  constructor(
    code: number,
    reason: string,
    message: string,
    details?: StatusDetails,
    headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.reason = reason;
    this.details = details;
    this.headers = headers;
  }

  toStatus(): Status {
    return failureStatus(this.code, this.reason, this.message, this.details);
  }
}

export function failureStatus(
  code: number,
  reason: string,
  message: string,
  details?: StatusDetails,
): Status {
  const status: Status = {
    apiVersion: 'v1',
    kind: 'Status',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  };
  if (details) status.details = details;
  return status;
}

export function successStatus(details?: StatusDetails): Status {
  const status: Status = { apiVersion: 'v1', kind: 'Status', metadata: {}, status: 'Success', code: 200 };
  if (details) status.details = details;
  return status;
}

/** What a resource is called in messages: `serviceinstances.xenos.io "web"`. */
export interface ResourceRef {
  plural: string;
  group: string;
  kind: string;
  name?: string;
}

function qualified(ref: ResourceRef): string {
  return ref.group ? `${ref.plural}.${ref.group}` : ref.plural;
}

export const errors = {
  badRequest: (message: string, causes?: StatusCause[]) =>
    new ApiError(400, 'BadRequest', message, causes ? { causes } : undefined),
  unauthorized: (message = 'Unauthorized') => new ApiError(401, 'Unauthorized', message),
  forbidden: (message: string) => new ApiError(403, 'Forbidden', message),
  notFound: (ref: ResourceRef) =>
    new ApiError(404, 'NotFound', `${qualified(ref)} "${ref.name ?? ''}" not found`, {
      name: ref.name,
      group: ref.group,
      kind: ref.plural,
    }),
  pathNotFound: (path: string) =>
    new ApiError(404, 'NotFound', `the server could not find the requested resource (${path})`),
  invalid: (ref: ResourceRef, causes: StatusCause[]) =>
    new ApiError(
      422,
      'Invalid',
      `${ref.kind}.${ref.group} "${ref.name ?? ''}" is invalid: ${causes
        .map((c) => (c.field ? `${c.field}: ${c.message}` : c.message))
        .join(', ')}`,
      { name: ref.name, group: ref.group, kind: ref.kind, causes },
    ),
  methodNotAllowed: (method: string, allowed: string[]) =>
    new ApiError(
      405,
      'MethodNotAllowed',
      `the server does not allow the method ${method} for the requested resource`,
      undefined,
      {
        Allow: allowed.join(', '),
      },
    ),
  notAcceptable: (message: string) => new ApiError(406, 'NotAcceptable', message),
  /** 409 for a server-side apply that would take fields other managers own (kubectl prints it). */
  applyConflict: (ref: ResourceRef, message: string, causes: StatusCause[]) =>
    new ApiError(409, 'Conflict', message, { name: ref.name, group: ref.group, kind: ref.plural, causes }),
  tooLarge: (limit: number, hint = '') =>
    new ApiError(
      413,
      'RequestEntityTooLarge',
      `the request body is larger than the limit of ${limit} bytes${hint}`,
    ),
  entityTooLarge: (message: string) => new ApiError(413, 'RequestEntityTooLarge', message),
  /** 429 with Retry-After (whole seconds, at least 1), as the Kubernetes API answers a rate limit. */
  tooManyRequests: (message: string, retryAfterSeconds: number) => {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    return new ApiError(
      429,
      'TooManyRequests',
      message,
      { retryAfterSeconds: seconds },
      { 'Retry-After': String(seconds) },
    );
  },
  unsupportedMediaType: (type: string, supported: string[]) =>
    new ApiError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${supported.join(', ')} (got ${JSON.stringify(type)})`,
    ),
  internal: (message = 'an internal error occurred') => new ApiError(500, 'InternalError', message),
  serviceUnavailable: (message: string) => new ApiError(503, 'ServiceUnavailable', message),
};

/** Turn anything thrown while serving a request into an ApiError. Store errors carry their own
 *  code, reason and Kubernetes wording. Unknown errors become a 500 whose message carries no
 *  stack trace; the caller logs the original. */
export function toApiError(err: unknown, ref?: ResourceRef): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof StoreError) {
    const details: StatusDetails | undefined =
      err.objectName !== undefined
        ? { name: err.objectName, group: ref?.group, kind: ref?.plural }
        : undefined;
    return new ApiError(err.code, err.reason, err.message, details);
  }
  return errors.internal();
}
