// Named errors of the image swarm. Each says which peer or image, what went wrong and, where the operator
// can act, what to do.

import type { ErrorCode } from './protocol.ts';

/** A holder answered a request with an error (it does not hold the image or chunk, or is busy). */
export class HolderRefusedError extends Error {
  readonly peer: string;
  readonly code: ErrorCode;
  /** What a seed that Declined offers instead (chunk indexes). */
  readonly offer: number[];

  constructor(peer: string, code: ErrorCode, message: string, offer: number[] = []) {
    super(`peer ${peer} refused: ${code}: ${message}`);
    this.name = 'HolderRefusedError';
    this.peer = peer;
    this.code = code;
    this.offer = offer;
  }
}

/** A holder could not be reached, or its stream failed before an answer. */
export class HolderUnreachableError extends Error {
  readonly peer: string;

  constructor(peer: string, why: string) {
    super(`peer ${peer} unreachable: ${why}`);
    this.name = 'HolderUnreachableError';
    this.peer = peer;
  }
}

/** An answer that ended before the bytes its header (or the manifest) promised: a truncated chunk. */
export class TruncatedAnswerError extends Error {
  readonly peer: string;

  constructor(peer: string, what: string, got: number, length: number, why = 'the stream ended') {
    super(`peer ${peer} sent ${got} of the ${length} bytes of ${what}: ${why}`);
    this.name = 'TruncatedAnswerError';
    this.peer = peer;
  }
}

/** An answer of another length than the manifest says (or more bytes than its header announced). */
export class WrongLengthError extends Error {
  readonly peer: string;

  constructor(peer: string, what: string, got: number, length: number) {
    super(`peer ${peer} sent ${got} bytes for ${what}, which is ${length} bytes long; refused`);
    this.name = 'WrongLengthError';
    this.peer = peer;
  }
}

/** No host of the cluster is known to hold the image (Host.status.images), so there is nothing to pull. */
export class NoHoldersError extends Error {
  readonly digest: string;

  constructor(digest: string, why: string) {
    super(`image ${digest} cannot be pulled: ${why}`);
    this.name = 'NoHoldersError';
    this.digest = digest;
  }
}

/** A pull made no progress for too long: every holder it knew failed or left. */
export class PullStalledError extends Error {
  readonly digest: string;

  constructor(digest: string, seconds: number, detail: string) {
    super(`pulling image ${digest}: no chunk arrived for ${seconds} s; ${detail}`);
    this.name = 'PullStalledError';
    this.digest = digest;
  }
}
