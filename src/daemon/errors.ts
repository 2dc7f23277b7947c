// Named errors of xenosd's own start-up checks (the data dir's lock and modes). Each message says what was
// wrong, where, and what to do; main.ts prints it as one line and exits 1.

/** Another process holds the data dir's lock: two coordinators must never write one store. */
export class DataDirLockedError extends Error {
  static readonly code = 'ERR_DATA_DIR_LOCKED';
  readonly code = DataDirLockedError.code;
  /** The holder's pid, when its record names a live process (else undefined). */
  readonly holderPid?: number;

  constructor(message: string, holderPid?: number) {
    super(message);
    this.name = 'DataDirLockedError';
    this.holderPid = holderPid;
  }
}

/** The data dir (or a secret in it) could not be made private to this user. */
export class DataDirModeError extends Error {
  static readonly code = 'ERR_DATA_DIR_MODE';
  readonly code = DataDirModeError.code;

  constructor(message: string) {
    super(message);
    this.name = 'DataDirModeError';
  }
}

/** Some parts of xenosd failed to stop (every other part was still stopped). `failures` names each part
 *  and its error; the message lists them on one line. */
export class DaemonStopError extends AggregateError {
  static readonly code = 'ERR_DAEMON_STOP';
  readonly code = DaemonStopError.code;
  readonly failures: readonly { part: string; error: unknown }[];

  constructor(failures: { part: string; error: unknown }[]) {
    const what = failures.map(
      (f) => `${f.part}: ${f.error instanceof Error ? f.error.message : String(f.error)}`,
    );
    super(
      failures.map((f) => f.error),
      `${failures.length} part(s) of xenosd failed to stop (the others stopped): ${what.join('; ')}`,
    );
    this.name = 'DaemonStopError';
    this.failures = failures;
  }
}
