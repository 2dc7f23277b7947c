// One image's directory in the cache and the step that makes it usable. The layout, per image:
//
//   <cacheDir>/sha256/<image hex>/manifest.json   the blob's manifest (manifest.ts), exact bytes
//                                 blob            the bytes that travel: the file, or the directory's tar
//                                 have            bitmap of verified chunks (have-bitmap.ts)
//                                 image           the usable form: a read-only hard link to blob (file),
//                                                 or the extracted tree (directory)
//                                 meta.json       written last: its presence means complete
//
// A pull in progress is the same directory without meta.json. `finishImage` turns a blob whose chunks are
// all verified into the usable image and checks the image digest: a file is linked, a directory is
// extracted into a fresh staging directory (canonical-tar.ts), its links checked (image-links.ts) and its
// canonical digest computed (digest.ts); only a match is renamed into place and recorded in meta.json.

import { randomBytes } from 'node:crypto';
import { chmod, type FileHandle, link, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { extractTar } from './canonical-tar.ts';
import { directoryDigest, parseDigest, sha256File } from './digest.ts';
import { ImageDigestMismatchError, ImageError, ImageSourceError } from './errors.ts';
import { refuseEscapingLinks } from './image-links.ts';
import type { ImageKind } from './manifest.ts';

export interface ImportedImage {
  digest: string;
  /** The cached image: a file or a directory. */
  path: string;
  /** Bytes of the file, or of all files of the directory. */
  size: number;
  kind: ImageKind;
}

/** meta.json: what the image is and where it came from; written last. */
export interface ImageMeta {
  digest: string;
  kind: ImageKind;
  /** As ImportedImage.size. */
  size: number;
  /** Bytes of the blob (what travels; the manifest's size). */
  blobSize?: number;
  /** sha256 of the blob: for a file the image digest, for a directory its tar's (what uploads name). */
  blobDigest?: string;
  source: string;
  /** It came chunk by chunk from peers (not an upload, an import or a download here). */
  pulled?: boolean;
  importedAt: string;
}

export const FILES = {
  manifest: 'manifest.json',
  blob: 'blob',
  have: 'have',
  image: 'image',
  meta: 'meta.json',
} as const;

export function entryDir(cacheDir: string, digest: string): string {
  return join(cacheDir, 'sha256', parseDigest(digest));
}

export async function readMeta(dir: string): Promise<ImageMeta | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, FILES.meta), 'utf8')) as ImageMeta;
  } catch {
    return undefined;
  }
}

/** The cached image with this digest, if this host has all of it. */
export async function cachedImage(cacheDir: string, digest: string): Promise<ImportedImage | undefined> {
  const dir = entryDir(cacheDir, digest);
  const meta = await readMeta(dir);
  return meta && { digest: meta.digest, path: join(dir, FILES.image), size: meta.size, kind: meta.kind };
}

/** `length` bytes at `offset` of an open file; undefined when the file ends first. */
export async function readFully(fh: FileHandle, offset: number, length: number): Promise<Buffer | undefined> {
  const buf = Buffer.allocUnsafe(length);
  let read = 0;
  while (read < length) {
    const { bytesRead } = await fh.read(buf, read, length - read, offset + read);
    if (bytesRead === 0) return undefined;
    read += bytesRead;
  }
  return buf;
}

/** A range of the file at `path` (see readFully); undefined when there is no such file. */
export async function readRangeOf(
  path: string,
  r: { offset: number; length: number },
): Promise<Buffer | undefined> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return undefined;
  try {
    return await readFully(fh, r.offset, r.length);
  } finally {
    await fh.close();
  }
}

/** Writes `data` to `path` durably and atomically (a temporary file, fsync, rename). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export async function writeMeta(dir: string, meta: ImageMeta): Promise<void> {
  await writeFileAtomic(join(dir, FILES.meta), `${JSON.stringify(meta, null, 2)}\n`);
}

/** A file image's usable form: a read-only hard link to its blob (one copy on disk). */
export async function linkBlob(dir: string): Promise<void> {
  await rm(join(dir, FILES.image), { force: true });
  await chmod(join(dir, FILES.blob), 0o444);
  await link(join(dir, FILES.blob), join(dir, FILES.image));
}

/**
 * Makes `<dir>/image` from `<dir>/blob` and returns the image's digest and size, without writing meta.json.
 * Throws ImageDigestMismatchError when `expected` is given and differs, UnsafeArchiveError or
 * ImageLinkEscapeError for a directory tar that may not be an image; leaves no `image` behind then.
 */
export async function finishImage(
  dir: string,
  kind: ImageKind,
  source: string,
  expected: string | undefined,
  signal?: AbortSignal,
): Promise<{ digest: string; size: number }> {
  const blob = join(dir, FILES.blob);
  const image = join(dir, FILES.image);
  await rm(image, { recursive: true, force: true });
  if (kind === 'file') {
    const digest = `sha256:${await sha256File(blob, signal)}`;
    if (expected !== undefined && digest !== expected)
      throw new ImageDigestMismatchError(source, expected, digest);
    await linkBlob(dir);
    return { digest, size: (await stat(blob)).size };
  }
  const staging = join(dir, `image.${randomBytes(4).toString('hex')}.tmp`);
  try {
    try {
      await extractTar(blob, staging, source, signal);
    } catch (err) {
      if (err instanceof ImageError || signal?.aborted) throw err;
      throw new ImageSourceError(source, `the blob is not a readable tar: ${(err as Error).message}`, {
        cause: err,
      });
    }
    await refuseEscapingLinks(staging, source, signal);
    const got = await directoryDigest(staging, signal);
    if (expected !== undefined && got.digest !== expected)
      throw new ImageDigestMismatchError(source, expected, got.digest);
    await rename(staging, image);
    return got;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
