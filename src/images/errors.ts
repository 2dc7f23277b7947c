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

/** An image URL (or a redirect) leads to an address this host does not fetch from. Nothing was fetched. */
export class ImageAddressRefusedError extends ImageError {
  readonly address: string;

  constructor(source: string, host: string, address: string, kind: string) {
    super(
      'AddressRefused',
      `image ${source}: refused to connect to ${host === address ? address : `${host} (${address})`}, a ${kind} address; ` +
        'image URLs must lead to public addresses unless xenosd runs with --allow-private-image-urls',
    );
    this.name = 'ImageAddressRefusedError';
    this.address = address;
  }
}

/** The image is larger than this host imports (`--max-image-size`). Nothing was cached. */
export class ImageTooLargeError extends ImageError {
  constructor(source: string, limit: number, seen: string) {
    super(
      'TooLarge',
      `image ${source}: ${seen}, more than the ${limit} bytes this host imports; raise xenosd's --max-image-size to import it`,
    );
    this.name = 'ImageTooLargeError';
  }
}

/** An image symlink leads out of the image: its meaning would depend on the host. Nothing was cached. */
export class ImageLinkEscapeError extends ImageError {
  constructor(source: string, link: string, target: string) {
    super(
      'LinkEscapes',
      `image ${source}: symbolic link ${JSON.stringify(link)} -> ${JSON.stringify(target)} leads out of the image; ` +
        'an image may hold only links that stay inside it (relative, not climbing above its root)',
    );
    this.name = 'ImageLinkEscapeError';
  }
}
