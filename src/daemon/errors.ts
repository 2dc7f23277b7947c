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
