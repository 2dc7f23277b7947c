// Named errors of state replication between hosts. Each says what went wrong, with which peer, and
// what to do; none of them is a user error (replication repairs itself), so they are logged.

/** A message to or from a peer is larger than the cap. */
export class MessageTooLargeError extends Error {
  readonly bytes: number;
  readonly limit: number;
  constructor(what: string, bytes: number, limit: number) {
    super(
      `${what} is ${bytes} bytes, over the ${limit}-byte cap of a state-replication message; ` +
        'the peer is faulty or runs a different xenos version (raise maxMessageBytes on both sides if objects are really this large)',
    );
    this.name = 'MessageTooLargeError';
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** A message from a peer is not JSON, or not one of the messages of the protocol. */
export class MalformedMessageError extends Error {
  constructor(detail: string) {
    super(
      `malformed state-replication message: ${detail}; the peer is faulty or runs a different xenos version`,
    );
    this.name = 'MalformedMessageError';
  }
}

/** The peer is not connected (or went away during the request). */
export class PeerUnreachableError extends Error {
  readonly peer: string;
  constructor(peer: string, detail = 'not connected') {
    super(`state replication: peer ${peer} is unreachable (${detail}); anti-entropy retries when it is back`);
    this.name = 'PeerUnreachableError';
    this.peer = peer;
  }
}

/** The peer answered with an error (it could not handle our request). */
export class RemoteError extends Error {
  readonly peer: string;
  constructor(peer: string, message: string) {
    super(`state replication: peer ${peer} answered with an error: ${message}`);
    this.name = 'RemoteError';
    this.peer = peer;
  }
}
