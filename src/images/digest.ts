// Content digests of template images, `sha256:<hex>`. A file's digest is the SHA-256 of its bytes. A
// directory's digest is the SHA-256 of its canonical listing: one line per entry below the root, sorted by
// relative path ('/'-separated, compared as UTF-8 bytes), each line
//     D <mode> <path>\n                 a directory
//     F <mode> <sha256 of bytes> <path>\n   a regular file
//     L 0777 <link target> <path>\n     a symbolic link (not followed)
// where <mode> is the permission bits as 4 octal digits and <path>/<target> are JSON strings. Owners,
// times and hard links do not count, so a copy hashes the same on every host. Other file types (devices,
// sockets, fifos) are refused, and so are setuid and setgid files (SetIdFileError).

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ImageSourceError, InvalidDigestError, SetIdFileError } from './errors.ts';

export const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;
/** setuid and setgid: a file an image may not hold (see SetIdFileError). */
export const SET_ID_BITS = 0o6000;

export function parseDigest(digest: string): string {
  if (!DIGEST_PATTERN.test(digest)) throw new InvalidDigestError(digest);
  return digest.slice('sha256:'.length);
}

export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash, { signal });
  return hash.digest('hex');
}

/** A pass-through stream that hashes and counts what flows through it; past `limit` bytes it fails with
 *  `tooLarge(bytes)` instead of passing more on. */
export function hashing(
  opts: { limit?: number; tooLarge?: (bytes: number) => Error } = {},
): Transform & { hex(): string; bytes(): number } {
  const hash = createHash('sha256');
  let bytes = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (opts.limit !== undefined && bytes > opts.limit) {
        done(opts.tooLarge?.(bytes) ?? new Error(`more than ${opts.limit} bytes`));
        return;
      }
      hash.update(chunk);
      done(null, chunk);
    },
  });
  return Object.assign(t, { hex: () => hash.digest('hex'), bytes: () => bytes });
}

function mode(m: number): string {
  return (m & 0o7777).toString(8).padStart(4, '0');
}

/** The canonical listing of `dir` (see the file comment) and the total size of its files. */
export async function directoryListing(
  dir: string,
  signal?: AbortSignal,
): Promise<{ listing: string; size: number }> {
  const lines: [string, string][] = [];
  let size = 0;
  async function walk(rel: string): Promise<void> {
    const names = await readdir(join(dir, rel));
    for (const name of names) {
      signal?.throwIfAborted();
      const relPath = rel ? `${rel}/${name}` : name;
      const abs = join(dir, relPath);
      const st = await lstat(abs);
      const path = JSON.stringify(relPath);
      if (st.isDirectory()) {
        lines.push([relPath, `D ${mode(st.mode)} ${path}\n`]);
        await walk(relPath);
      } else if (st.isFile()) {
        if (st.mode & SET_ID_BITS) throw new SetIdFileError(dir, relPath);
        lines.push([relPath, `F ${mode(st.mode)} ${await sha256File(abs, signal)} ${path}\n`]);
        size += st.size;
      } else if (st.isSymbolicLink()) {
        lines.push([relPath, `L 0777 ${JSON.stringify(await readlink(abs))} ${path}\n`]);
      } else {
        throw new ImageSourceError(
          dir,
          `${relPath} is a device, socket or fifo; images hold files, directories and links only`,
        );
      }
    }
  }
  await walk('');
  lines.sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return { listing: lines.map(([, l]) => l).join(''), size };
}

export async function directoryDigest(
  dir: string,
  signal?: AbortSignal,
): Promise<{ digest: string; size: number }> {
  const { listing, size } = await directoryListing(dir, signal);
  return { digest: `sha256:${createHash('sha256').update(listing).digest('hex')}`, size };
}
