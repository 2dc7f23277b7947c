// Importing a template image from where a person put it — a local file or directory, or an http(s) URL —
// into this host's image store (image-store.ts), as a blob with its manifest like every other entry, so
// an imported image can be served to peers at once. The import is staged under <cacheDir>/tmp/ and enters
// the store in one rename, only once its digest is known and matches the expected one, so a half-imported
// or wrong image is never in the store. Importing what is already held does no work when the digest is
// given (no download, no copy), and keeps no second copy when it is not.
// A local path that is a symlink is resolved first and what it points to is copied (`cp -a
// --reflink=auto`, links inside kept as links), then hashed: the store never holds a link to a place that
// could change after the digest was taken. Links inside a directory image must stay inside it
// (image-links.ts). A directory's blob is the canonical tar of the staged copy (canonical-tar.ts).
// URLs are fetched under the host's URL policy (download.ts: addresses, size cap, timeouts).

import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, open, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { packDirectory } from './canonical-tar.ts';
import { directoryDigest, hashing, parseDigest } from './digest.ts';
import { downloadImage, type UrlPolicy } from './download.ts';
import { ImageSourceError } from './errors.ts';
import { FILES, type ImportedImage } from './image-entry.ts';
import { refuseEscapingLinks } from './image-links.ts';
import { ImageStore } from './image-store.ts';

export { cachedImage, type ImportedImage } from './image-entry.ts';

const run = promisify(execFile);

export interface ImageImportSource {
  path?: string;
  url?: string;
}

export interface ImportOptions {
  /** Aborts the import (the controller stopping). */
  signal?: AbortSignal;
  /** A limit for the whole import, if any; downloads are bounded by their progress (see UrlPolicy). */
  timeoutMs?: number;
  /** What URL imports may reach and fetch (addresses, size, timeouts). */
  url?: UrlPolicy;
}

/** Imports `source` into `store`; `expectedDigest`, when given, must be what it hashes to. */
export async function importInto(
  store: ImageStore,
  source: ImageImportSource,
  expectedDigest: string | undefined,
  options: ImportOptions = {},
): Promise<ImportedImage> {
  const where = source.url ?? source.path;
  if (!where || (source.url && source.path)) {
    throw new ImageSourceError(String(where), 'give exactly one of spec.image.path and spec.image.url');
  }
  if (expectedDigest !== undefined) {
    parseDigest(expectedDigest);
    const hit = await store.get(expectedDigest);
    if (hit) return hit;
  }
  const signal = AbortSignal.any(
    [options.signal, options.timeoutMs ? AbortSignal.timeout(options.timeoutMs) : undefined].filter(
      (s) => s !== undefined,
    ),
  );
  const dir = await store.staging();
  if (source.url) {
    const got = await downloadImage(source.url, join(dir, FILES.blob), options.url ?? {}, signal).catch(
      async (err) => {
        await store.discardStaging(dir);
        throw err;
      },
    );
    return store.commit(
      {
        dir,
        kind: 'file',
        source: where,
        digest: got.digest,
        size: got.size,
        blobDigest: got.digest,
        expectedDigest,
      },
      signal,
    );
  }
  const staged = await copyLocal(source.path!, dir, signal).catch(async (err) => {
    await store.discardStaging(dir);
    throw err;
  });
  return store.commit({ ...staged, dir, source: where, expectedDigest }, signal);
}

/** importInto a store over `cacheDir` (the template controller's entry point before it held a store). */
export function importImage(
  source: ImageImportSource,
  expectedDigest: string | undefined,
  options: ImportOptions & { cacheDir: string },
): Promise<ImportedImage> {
  return importInto(new ImageStore({ cacheDir: options.cacheDir }), source, expectedDigest, options);
}

/** Copies a local file or directory into the staging dir `dir` as `blob` (file) or `image` + its tar
 *  `blob` (directory), with its digest. */
async function copyLocal(
  path: string,
  dir: string,
  signal: AbortSignal,
): Promise<{ kind: 'file' | 'directory'; digest: string; size: number; blobDigest?: string }> {
  const missing = (err: NodeJS.ErrnoException): never => {
    throw new ImageSourceError(path, err.code === 'ENOENT' ? 'no such file or directory' : err.message, {
      cause: err,
    });
  };
  // The path itself may be a link (an operator's `current -> v2`): what it points to now is imported.
  const real = await realpath(path).catch(missing);
  const st = await stat(real).catch(missing);
  if (st.isDirectory()) {
    const to = join(dir, FILES.image);
    // Copy first and hash the copy: the digest is then of exactly what the store holds.
    await run('cp', ['-a', '--reflink=auto', '--', real, to], { signal });
    // Swapped for a link between realpath and cp: cp copied the link itself. Refuse rather than keep it.
    if (!(await lstat(to)).isDirectory())
      throw new ImageSourceError(path, 'changed while it was being copied; try again');
    await refuseEscapingLinks(to, path, signal);
    const got = await directoryDigest(to, signal);
    const h = hashing();
    const fh = await open(join(dir, FILES.blob), 'w', 0o444);
    await pipeline(packDirectory(to, signal), h, fh.createWriteStream(), { signal });
    return { kind: 'directory', ...got, blobDigest: `sha256:${h.hex()}` };
  }
  if (!st.isFile()) throw new ImageSourceError(path, 'is neither a regular file nor a directory');
  const h = hashing();
  await pipeline(createReadStream(real), h, createWriteStream(join(dir, FILES.blob), { mode: 0o644 }), {
    signal,
  });
  return { kind: 'file', digest: `sha256:${h.hex()}`, size: h.bytes() };
}
