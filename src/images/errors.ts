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

/** Manifest bytes that are not a valid, canonical image manifest. Nothing was stored. */
export class InvalidManifestError extends ImageError {
  constructor(source: string, why: string) {
    super('InvalidManifest', `image manifest from ${source}: ${why}`);
    this.name = 'InvalidManifestError';
  }
}

/** Manifest bytes that do not hash to the manifest digest the holder published. Nothing was stored. */
export class ManifestDigestMismatchError extends ImageError {
  constructor(expected: string, actual: string) {
    super(
      'ManifestDigestMismatch',
      `image manifest: expected manifest digest ${expected} but the bytes hash to ${actual}; the sender is not to be trusted (nothing was stored)`,
    );
    this.name = 'ManifestDigestMismatchError';
  }
}

/** A chunk whose bytes do not hash to its manifest entry (or have the wrong length). Nothing was written. */
export class ChunkHashMismatchError extends ImageError {
  readonly index: number;

  constructor(image: string, index: number, why: string) {
    super('ChunkHashMismatch', `image ${image}: chunk ${index} refused: ${why} (nothing was written)`);
    this.name = 'ChunkHashMismatchError';
    this.index = index;
  }
}

/** A directory image's tar holds something an image may not: an absolute path, `..`, a device, a hard
 *  link, a path given twice. Nothing was kept. */
export class UnsafeArchiveError extends ImageError {
  constructor(source: string, entry: string, why: string) {
    super(
      'UnsafeArchive',
      `image ${source}: tar entry ${JSON.stringify(entry)} refused: ${why}; an image tar holds only files, directories and symbolic links at relative paths, each once (nothing was kept)`,
    );
    this.name = 'UnsafeArchiveError';
  }
}

/** The image is not on this host and this host has no way to get it (no peer holds it, or no swarm). */
export class ImageNotHeldError extends ImageError {
  constructor(digest: string, why: string) {
    super('NotHeld', `image ${digest} is not on this host: ${why}`);
    this.name = 'ImageNotHeldError';
  }
}

/** An uploaded blob does not hash to the digest the client announced, or is not the announced size. */
export class BlobMismatchError extends ImageError {
  constructor(expected: string, why: string) {
    super('BlobMismatch', `upload ${expected}: ${why}; the upload was discarded, push again`);
    this.name = 'BlobMismatchError';
  }
}

/** A piece of an upload that does not start where the upload stands (the client should resume there). */
export class UploadOffsetError extends ImageError {
  readonly offset: number;

  constructor(digest: string, offset: number, start: number) {
    super(
      'UploadOffset',
      `upload ${digest}: this piece starts at byte ${start} but ${offset} bytes have arrived; send from byte ${offset}`,
    );
    this.name = 'UploadOffsetError';
    this.offset = offset;
  }
}

/** No upload of this blob is in progress (never begun, finished, or removed as abandoned). */
export class UploadNotFoundError extends ImageError {
  constructor(digest: string) {
    super('UploadNotFound', `no upload of ${digest} is in progress; begin it again (POST uploads)`);
    this.name = 'UploadNotFoundError';
  }
}

/** Another request is writing this upload right now. */
export class UploadBusyError extends ImageError {
  constructor(digest: string) {
    super('UploadBusy', `upload ${digest} is being written by another request; wait for it or retry`);
    this.name = 'UploadBusyError';
  }
}

/** An upload finished before all its bytes arrived. */
export class UploadIncompleteError extends ImageError {
  readonly offset: number;

  constructor(digest: string, offset: number, size: number) {
    super(
      'UploadIncomplete',
      `upload ${digest}: ${offset} of ${size} bytes have arrived; send from byte ${offset}, then finish`,
    );
    this.name = 'UploadIncompleteError';
    this.offset = offset;
  }
}

/** A setuid or setgid file in a directory image. The host's image store is written by xenosd as root,
 *  so such a file would be a root-owned setuid program on the host, runnable by the host's own users
 *  (domains run with no_new_privs, where the bit does nothing anyway). Nothing was kept. */
export class SetIdFileError extends ImageSourceError {
  constructor(source: string, path: string) {
    super(
      source,
      `${path} is setuid or setgid; images may not hold such files (their owner would be root on every host): clear the bits (chmod u-s,g-s) and push again`,
    );
    this.name = 'SetIdFileError';
  }
}
