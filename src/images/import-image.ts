// Importing a template image into this host's content-addressed cache, for the template controller:
//
//   <cacheDir>/sha256/<hex>/image       the file as is, or the directory as a directory
//   <cacheDir>/sha256/<hex>/meta.json   digest, kind, size, source, time (written before the entry appears)
//
// An entry is built under <cacheDir>/tmp/ and renamed into place in one step, only once its digest is known
// and matches the expected one, so a half-imported or wrong image is never in the cache. Importing what is
// already cached does no work when the digest is given (no download, no copy), and no copy when it is not.
// Sources: a local file or directory, or an http(s) URL (download.ts: address policy, size cap, connect
// timeout and low-speed limit, hashed while downloading). A local path that is a symlink is resolved first
// and what it points to is copied (`cp -a --reflink=auto`, links inside kept as links), then hashed: the
// cache never holds a link to a place that could change after the digest was taken. Links inside a
// directory image must stay inside it (image-links.ts).

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { directoryDigest, hashing, parseDigest } from './digest.ts';
import { downloadImage, type UrlPolicy } from './download.ts';
import { ImageDigestMismatchError, ImageSourceError } from './errors.ts';
import { refuseEscapingLinks } from './image-links.ts';

const run = promisify(execFile);

export interface ImageImportSource {
  path?: string;
  url?: string;
}

export interface ImportedImage {
  digest: string;
  /** The cached image: a file or a directory. */
  path: string;
  /** Bytes of the file, or of all files of the directory. */
  size: number;
  kind: 'file' | 'directory';
}

export interface ImportOptions {
  cacheDir: string;
  /** Aborts the import (the controller stopping). */
  signal?: AbortSignal;
  /** A limit for the whole import, if any; downloads are bounded by their progress (see UrlPolicy). */
  timeoutMs?: number;
  /** What URL imports may reach and fetch (addresses, size, timeouts). */
  url?: UrlPolicy;
}

interface Meta {
  digest: string;
  kind: 'file' | 'directory';
  size: number;
  source: string;
  importedAt: string;
}

function entryDir(cacheDir: string, digest: string): string {
  return join(cacheDir, 'sha256', parseDigest(digest));
}

/** The cached image with this digest, if this host has it. */
export async function cachedImage(cacheDir: string, digest: string): Promise<ImportedImage | undefined> {
  const dir = entryDir(cacheDir, digest);
  try {
    const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as Meta;
    return { digest: meta.digest, path: join(dir, 'image'), size: meta.size, kind: meta.kind };
  } catch {
    return undefined;
  }
}

export async function importImage(
  source: ImageImportSource,
  expectedDigest: string | undefined,
  options: ImportOptions,
): Promise<ImportedImage> {
  const where = source.url ?? source.path;
  if (!where || (source.url && source.path)) {
    throw new ImageSourceError(String(where), 'give exactly one of spec.image.path and spec.image.url');
  }
  if (expectedDigest !== undefined) {
    parseDigest(expectedDigest);
    const hit = await cachedImage(options.cacheDir, expectedDigest);
    if (hit) return hit;
  }
  const signal = AbortSignal.any(
    [options.signal, options.timeoutMs ? AbortSignal.timeout(options.timeoutMs) : undefined].filter(
      (s) => s !== undefined,
    ),
  );
  const tmpRoot = join(options.cacheDir, 'tmp');
  await mkdir(tmpRoot, { recursive: true });
  const staging = join(tmpRoot, `${Date.now()}-${randomBytes(6).toString('hex')}`);
  await mkdir(staging);
  try {
    const imagePath = join(staging, 'image');
    let got: { digest: string; size: number; kind: 'file' | 'directory' };
    if (source.url) got = await downloadImage(source.url, imagePath, options.url ?? {}, signal);
    else got = await copyLocal(source.path!, imagePath, signal);
    if (expectedDigest !== undefined && got.digest !== expectedDigest) {
      throw new ImageDigestMismatchError(where, expectedDigest, got.digest);
    }
    const existing = await cachedImage(options.cacheDir, got.digest);
    if (existing) return existing;
    const meta: Meta = { ...got, source: where, importedAt: new Date().toISOString() };
    await writeFile(join(staging, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
    const final = entryDir(options.cacheDir, got.digest);
    await mkdir(join(options.cacheDir, 'sha256'), { recursive: true });
    try {
      await rename(staging, final);
    } catch (err) {
      // Someone else imported the same content at the same moment: theirs is as good as ours.
      const raced = await cachedImage(options.cacheDir, got.digest);
      if (!raced) throw err;
      return raced;
    }
    return { digest: got.digest, path: join(final, 'image'), size: got.size, kind: got.kind };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function copyLocal(
  path: string,
  to: string,
  signal: AbortSignal,
): Promise<{ digest: string; size: number; kind: 'file' | 'directory' }> {
  const missing = (err: NodeJS.ErrnoException): never => {
    throw new ImageSourceError(path, err.code === 'ENOENT' ? 'no such file or directory' : err.message, {
      cause: err,
    });
  };
  // The path itself may be a link (an operator's `current -> v2`): what it points to now is imported.
  const real = await realpath(path).catch(missing);
  const st = await stat(real).catch(missing);
  if (st.isDirectory()) {
    // Copy first and hash the copy: the digest is then of exactly what the cache holds.
    await run('cp', ['-a', '--reflink=auto', '--', real, to], { signal });
    // Swapped for a link between realpath and cp: cp copied the link itself. Refuse rather than cache it.
    if (!(await lstat(to)).isDirectory())
      throw new ImageSourceError(path, 'changed while it was being copied; try again');
    await refuseEscapingLinks(to, path, signal);
    return { ...(await directoryDigest(to, signal)), kind: 'directory' };
  }
  if (!st.isFile()) throw new ImageSourceError(path, 'is neither a regular file nor a directory');
  const h = hashing();
  await pipeline(createReadStream(real), h, createWriteStream(to, { mode: st.mode & 0o777 }), { signal });
  return { digest: `sha256:${h.hex()}`, size: h.bytes(), kind: 'file' };
}
