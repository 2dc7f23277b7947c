// The errors of the guest image builder: one class, whose message says what failed and what to do; the
// command-line entry prints it without a stack trace.

/** A step of the guest build failed (a command, a missing package, an unusable kernel). */
export class GuestBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestBuildError';
  }
}
