// Named errors of the membership protocol. A peer's bad message never throws out of the protocol: it is
// refused and counted by reason (`Swim.refusals`); these carry the reason to the counter.

export class MessageTooLargeError extends Error {
  static readonly code = 'ERR_SWIM_MESSAGE_TOO_LARGE';
  readonly code = MessageTooLargeError.code;
  readonly reason = 'too_large';
  constructor(bytes: number, cap: number, what: string) {
    super(`membership ${what} of ${bytes} bytes is over the ${cap}-byte cap`);
    this.name = 'MessageTooLargeError';
  }
}

export class MalformedMessageError extends Error {
  static readonly code = 'ERR_SWIM_MALFORMED';
  readonly code = MalformedMessageError.code;
  readonly reason = 'malformed';
  constructor(detail: string) {
    super(`membership message refused: ${detail}`);
    this.name = 'MalformedMessageError';
  }
}

/** A probe the caller asked for (the verdict writer's confirmation) could not run. */
export class ProbeUnavailableError extends Error {
  static readonly code = 'ERR_SWIM_PROBE_UNAVAILABLE';
  readonly code = ProbeUnavailableError.code;
  constructor(peer: string, detail: string) {
    super(`cannot probe ${peer}: ${detail}`);
    this.name = 'ProbeUnavailableError';
  }
}
