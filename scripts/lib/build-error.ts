// The error of the builders under scripts/ (the demo guest, the offline xl): one class, whose message says
// what failed and what to do; their command-line entries print it without a stack trace.

/** A step of a build failed (a command, a missing package, an unusable kernel). */
export class BuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildError';
  }
}
