// Errors of the reconcile runtime. A reconcile throws `TerminalError` when the spec itself can never
// work (a bad parameter, a digest that does not match): the runner stops retrying that key and the
// object gets a `Stalled` condition carrying the reason and message. Any other throw is retried with
// per-key exponential backoff.

/** The desired state cannot be reached until someone changes the spec; do not retry. */
export class TerminalError extends Error {
  /** CamelCase reason for the `Stalled` condition, e.g. `InvalidParameter`. */
  readonly reason: string;

  constructor(reason: string, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TerminalError';
    this.reason = reason;
  }
}

export function isTerminalError(err: unknown): err is TerminalError {
  return err instanceof TerminalError;
}
