// The errors xenosctl reports to people. Each carries the exit code it ends the process with and
// a one-line message (plus detail lines); main.ts prints them as `error: ...` on stderr and never shows
// a stack trace unless XENOS_DEBUG=1. The API client's errors (src/client/errors.ts) are ClientErrors too.

import { ClientError } from '../client/errors.ts';

/** A failure of xenosctl itself (a file, the config) the user can act on; exit code 1 unless a subclass says otherwise. */
export class CliError extends ClientError {
  constructor(message: string, opts: { exitCode?: number; details?: string[]; cause?: unknown } = {}) {
    super(message, opts);
    this.name = 'CliError';
  }
}

/** The command line itself is wrong (unknown kind, missing argument, bad flag value): exit 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, { exitCode: 2 });
    this.name = 'UsageError';
  }
}
