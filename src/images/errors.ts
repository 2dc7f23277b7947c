// Named errors of image import. Messages name the source, the digests involved and what to do.

export class ImageError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImageError';
    this.code = code;
  }
}

/** The content does not hash to the digest the template promised. Nothing was cached. */
export class ImageDigestMismatchError extends ImageError {
  readonly expected: string;
  readonly actual: string;

  constructor(source: string, expected: string, actual: string) {
    super(
      'DigestMismatch',
      `image ${source}: expected digest ${expected} but the content hashes to ${actual}; fix spec.image.digest or the source (nothing was cached)`,
    );
    this.name = 'ImageDigestMismatchError';
    this.expected = expected;
    this.actual = actual;
  }
}

/** The source cannot be read: missing path, unsupported file type, HTTP error. */
export class ImageSourceError extends ImageError {
  constructor(source: string, message: string, options?: { cause?: unknown }) {
    super('SourceUnavailable', `image ${source}: ${message}`, options);
    this.name = 'ImageSourceError';
  }
}

export class InvalidDigestError extends ImageError {
  constructor(digest: string) {
    super('InvalidDigest', `"${digest}" is not a digest: write sha256:<64 lower-case hex digits>`);
    this.name = 'InvalidDigestError';
  }
}
