// The errors xenosctl reports to people. Each carries the exit code it ends the process with and
// a one-line message (plus detail lines, e.g. one per invalid field); main.ts prints them as
// `error: ...` on stderr and never shows a stack trace unless XENOS_DEBUG=1.

/** A failure the user can act on; exit code 1 unless a subclass says otherwise. */
export class CliError extends Error {
  readonly exitCode: number;
  /** Extra lines printed under the message, each indented. */
  readonly details: string[];

  constructor(message: string, opts: { exitCode?: number; details?: string[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CliError';
    this.exitCode = opts.exitCode ?? 1;
    this.details = opts.details ?? [];
  }
}

/** The command line itself is wrong (unknown kind, missing argument, bad flag value): exit 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, { exitCode: 2 });
    this.name = 'UsageError';
  }
}

/** xenosd could not be reached at all. */
export class ConnectionError extends CliError {
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
export class ApiStatusError extends CliError {
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
export class TimeoutError extends CliError {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiStatusError && err.code === 404;
}
