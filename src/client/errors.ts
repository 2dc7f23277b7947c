// The errors of the API client: xenosd could not be reached, answered with a Kubernetes `Status`, or
// did not answer in time. Each carries the exit code a command line tool ends with and a one-line message
// for people (plus detail lines, e.g. one per invalid field); xenosctl prints them without a stack trace.

/** A failure the user can act on; exit code 1 unless a subclass says otherwise. */
export class ClientError extends Error {
  readonly exitCode: number;
  /** Extra lines printed under the message, each indented. */
  readonly details: string[];

  constructor(message: string, opts: { exitCode?: number; details?: string[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ClientError';
    this.exitCode = opts.exitCode ?? 1;
    this.details = opts.details ?? [];
  }
}

/** xenosd could not be reached at all. */
export class ConnectionError extends ClientError {
  readonly server: string;

  constructor(server: string, why: string, cause?: unknown) {
    super(`cannot reach xenosd at ${server}: ${why} (is xenosd running? set --server or XENOS_SERVER)`, {
      cause,
    });
    this.name = 'ConnectionError';
    this.server = server;
  }
}

/** A cause from a Kubernetes `Status` (422 Invalid lists one per field). */
export interface StatusCause {
  reason?: string;
  field?: string;
  message: string;
}

/** The shape of a Kubernetes `Status` object as the server sends it. */
export interface StatusBody {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; kind?: string; causes?: StatusCause[] };
}

/** The server answered with an error status. `reason` is the Kubernetes reason (NotFound, ...). */
export class ApiStatusError extends ClientError {
  readonly code: number;
  readonly reason: string;
  readonly causes: StatusCause[];

  constructor(code: number, body: StatusBody | undefined, fallback: string) {
    const causes = body?.details?.causes ?? [];
    const message = statusMessage(code, body, fallback);
    super(message, { details: causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)) });
    this.name = 'ApiStatusError';
    this.code = code;
    this.reason = body?.reason ?? reasonForCode(code);
    this.causes = causes;
  }
}

function statusMessage(code: number, body: StatusBody | undefined, fallback: string): string {
  if (code === 401) {
    return `unauthorized: xenosd rejected the token${body?.message && body.message !== 'Unauthorized' ? ` (${body.message})` : ''}; set --token or XENOS_TOKEN (the admin token is in the data dir's admin.token)`;
  }
  if (code === 422 && body?.details?.causes?.length) {
    // The message repeats the causes on one line; they are listed one per line instead.
    const head = body.message?.split(' is invalid:')[0];
    return head ? `${head} is invalid:` : 'the object is invalid:';
  }
  return body?.message || fallback;
}

function reasonForCode(code: number): string {
  const reasons: Record<number, string> = {
    400: 'BadRequest',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'NotFound',
    405: 'MethodNotAllowed',
    409: 'Conflict',
    410: 'Expired',
    422: 'Invalid',
    500: 'InternalError',
    503: 'ServiceUnavailable',
  };
  return reasons[code] ?? 'Unknown';
}

/** A wait or request ran out of time. */
export class TimeoutError extends ClientError {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiStatusError && err.code === 404;
}

export function isAlreadyExists(err: unknown): boolean {
  return err instanceof ApiStatusError && err.code === 409 && err.reason === 'AlreadyExists';
}
