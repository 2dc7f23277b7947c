// Importing a template image into this host's content-addressed cache, for the template controller:
//
//   <cacheDir>/sha256/<hex>/image       the file as is, or the directory as a directory
//   <cacheDir>/sha256/<hex>/meta.json   digest, kind, size, source, time (written before the entry appears)
//
// An entry is built under <cacheDir>/tmp/ and renamed into place in one step, only once its digest is known
// and matches the expected one, so a half-imported or wrong image is never in the cache. Importing what is
// already cached does no work when the digest is given (no download, no copy), and no copy when it is not.
// Sources: a local file or directory (copied with `cp --reflink=auto`, then hashed), or an http(s) URL
// (streamed to a temp file and hashed while downloading).

import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { promisify } from 'node:util';
import { directoryDigest, parseDigest } from './digest.ts';
import { ImageDigestMismatchError, ImageSourceError } from './errors.ts';

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
  signal?: AbortSignal;
  /** Limit for the whole import. Default 30 minutes. */
  timeoutMs?: number;
}

interface Meta {
  digest: string;
  kind: 'file' | 'directory';
  size: number;
  source: string;
  importedAt: string;
}

const DEFAULT_TIMEOUT_MS = 30 * 60_000;

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

/** A pass-through stream that hashes and counts what flows through it. */
function hashing(): Transform & { hex(): string; bytes(): number } {
  const hash = createHash('sha256');
  let bytes = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return Object.assign(t, { hex: () => hash.digest('hex'), bytes: () => bytes });
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
    [options.signal, AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS)].filter(
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
    if (source.url) got = await download(source.url, imagePath, signal);
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
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new ImageSourceError(path, err.code === 'ENOENT' ? 'no such file or directory' : err.message, {
      cause: err,
    });
  });
  if (st.isDirectory()) {
    // Copy first and hash the copy: the digest is then of exactly what the cache holds.
    await run('cp', ['-a', '--reflink=auto', '--', path, to], { signal });
    return { ...(await directoryDigest(to, signal)), kind: 'directory' };
  }
  if (!st.isFile()) throw new ImageSourceError(path, 'is neither a regular file nor a directory');
  const h = hashing();
  await pipeline(createReadStream(path), h, createWriteStream(to, { mode: st.mode & 0o777 }), { signal });
  return { digest: `sha256:${h.hex()}`, size: h.bytes(), kind: 'file' };
}

async function download(
  url: string,
  to: string,
  signal: AbortSignal,
): Promise<{ digest: string; size: number; kind: 'file' }> {
  if (!/^https?:\/\//.test(url))
    throw new ImageSourceError(url, 'only http:// and https:// URLs can be imported');
  let res: Response;
  try {
    res = await fetch(url, { signal });
  } catch (err) {
    if (signal.aborted) throw err;
    const cause = (err as Error & { cause?: Error }).cause;
    throw new ImageSourceError(url, `download failed: ${cause?.message ?? (err as Error).message}`, {
      cause: err,
    });
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new ImageSourceError(url, `the server answered ${res.status} ${res.statusText}`);
  }
  const h = hashing();
  await pipeline(Readable.fromWeb(res.body as WebReadableStream), h, createWriteStream(to), {
    signal,
  });
  return { digest: `sha256:${h.hex()}`, size: h.bytes(), kind: 'file' };
}
