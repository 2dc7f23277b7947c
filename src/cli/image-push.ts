// Pushing a local image (a file, or a directory as its canonical tar) to a xenosd through its upload API
// (src/api/image-upload-route.ts): hash the blob, ask the host whether it holds it already (then nothing
// is sent), else send it in pieces from where the host's upload stands — so a push cut short (Ctrl-C, a
// broken connection) resumes when run again, with no state kept on this side. A directory is packed twice
// (once to hash, once to send) rather than spooled to a temporary file; the tar is canonical, so both
// passes give the same bytes unless the directory changes meanwhile, which the host's digest check
// catches. Used by `xenosctl image push` and by `xenosctl apply` for templates with a local spec.image.path.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { XenosClient } from '../client/client.ts';
import { ApiStatusError, ConnectionError, TimeoutError } from '../client/errors.ts';
import { packDirectory } from '../images/canonical-tar.ts';
import { UPLOADS_PATH } from '../model/images-api.ts';
import { CliError } from './errors.ts';

const UPLOADS = UPLOADS_PATH;
/** Bytes per PATCH: a broken connection costs at most this much again, and a piece stays well within the
 *  host's 5-minute limit on one request (16 MiB in 134 s at 1 Mbit/s). */
const PIECE_BYTES = 16 * 1024 * 1024;
/** The longest one piece may take: the host's own limit on one request (Node's requestTimeout). */
const PIECE_TIMEOUT_MS = 5 * 60_000;
/** The longest the host may take to check and store a finished upload (a large directory is extracted
 *  and digested). */
const FINISH_TIMEOUT_MS = 60 * 60_000;
/** Broken connections survived in one push (each resumes where the host stands). */
const MAX_RETRIES = 8;

export interface PushedImage {
  digest: string;
  kind: 'file' | 'directory';
  size: number;
  blobDigest: string;
  blobSize: number;
  manifest?: string;
  /** False when the host held it already and nothing was sent. */
  uploaded: boolean;
}

export interface PushOptions {
  signal?: AbortSignal;
  /** Bytes of the blob the host has, as they arrive (starts at the offset a resumed push begins at). */
  onProgress?: (sent: number, total: number) => void;
  /** Called once the blob is hashed, before anything is sent. */
  onHashed?: (blob: { digest: string; size: number; kind: 'file' | 'directory' }) => void;
  pieceBytes?: number;
}

interface Blob {
  kind: 'file' | 'directory';
  digest: string;
  size: number;
  /** The blob's bytes from `offset` on. */
  from(offset: number): AsyncIterable<Buffer>;
}

async function localBlob(path: string, signal?: AbortSignal): Promise<Blob> {
  const real = await realpath(path).catch((err: NodeJS.ErrnoException) => {
    throw new CliError(`${path}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`);
  });
  const st = await stat(real);
  if (!st.isFile() && !st.isDirectory())
    throw new CliError(`${path} is neither a regular file nor a directory; an image is one of those`);
  const kind = st.isDirectory() ? 'directory' : 'file';
  const bytes = (): AsyncIterable<Buffer> =>
    kind === 'file' ? createReadStream(real, { signal }) : packDirectory(real, signal);
  const hash = createHash('sha256');
  let size = 0;
  try {
    await pipeline(bytes(), async (source: AsyncIterable<Buffer>) => {
      for await (const b of source) {
        hash.update(b);
        size += b.length;
      }
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new CliError(`cannot push ${path}: ${(err as Error).message}`, { cause: err });
  }
  const from = (offset: number): AsyncIterable<Buffer> =>
    kind === 'file'
      ? createReadStream(real, { start: offset, signal })
      : skip(packDirectory(real, signal), offset);
  return { kind, digest: `sha256:${hash.digest('hex')}`, size, from };
}

async function* skip(source: AsyncIterable<Buffer>, bytes: number): AsyncIterable<Buffer> {
  let left = bytes;
  for await (const b of source) {
    if (left >= b.length) {
      left -= b.length;
      continue;
    }
    yield left > 0 ? b.subarray(left) : b;
    left = 0;
  }
}

/** Exactly `n` bytes from `it` (keeping the rest for the next call); throws when it ends early. */
function take(it: AsyncIterator<Buffer>, n: number, carry: { rest?: Buffer }, path: string): Readable {
  return Readable.from(
    (async function* () {
      let left = n;
      while (left > 0) {
        let b = carry.rest;
        carry.rest = undefined;
        if (!b) {
          const next = await it.next();
          if (next.done)
            throw new CliError(`${path} changed while it was being pushed (it got shorter); push it again`);
          b = next.value;
        }
        if (b.length > left) {
          carry.rest = b.subarray(left);
          b = b.subarray(0, left);
        }
        left -= b.length;
        yield b;
      }
    })(),
    { objectMode: false },
  );
}

type Finished = {
  digest: string;
  kind: 'file' | 'directory';
  size: number;
  manifest?: string;
  blobSize?: number;
};

/** Pushes the image at `path` to the host `client` talks to. */
export async function pushImage(
  client: XenosClient,
  path: string,
  opts: PushOptions = {},
): Promise<PushedImage> {
  const blob = await localBlob(path, opts.signal);
  opts.onHashed?.(blob);
  const piece = opts.pieceBytes ?? PIECE_BYTES;
  const begun = await client.exchange<Finished | { upload: string; offset: number }>('POST', UPLOADS, {
    body: { digest: blob.digest, size: blob.size, kind: blob.kind },
    signal: opts.signal,
  });
  const done = (f: Finished, uploaded: boolean): PushedImage => ({
    digest: f.digest,
    kind: f.kind,
    size: f.size,
    manifest: f.manifest,
    blobDigest: blob.digest,
    blobSize: blob.size,
    uploaded,
  });
  if (begun.code === 201) {
    opts.onProgress?.(blob.size, blob.size);
    return done(begun.body as Finished, false);
  }
  const { upload } = begun.body as { upload: string; offset: number };
  let offset = (begun.body as { offset: number }).offset;
  let retries = 0;
  opts.onProgress?.(offset, blob.size);
  while (offset < blob.size) {
    const it = blob.from(offset)[Symbol.asyncIterator]();
    const carry: { rest?: Buffer } = {};
    try {
      while (offset < blob.size) {
        const n = Math.min(piece, blob.size - offset);
        const sent = await client.exchange<{ offset: number }>('PATCH', upload, {
          bytes: {
            stream: take(it, n, carry, path),
            headers: {
              'content-length': String(n),
              'content-range': `bytes ${offset}-${offset + n - 1}/${blob.size}`,
            },
          },
          signal: opts.signal,
          timeoutMs: PIECE_TIMEOUT_MS,
        });
        offset = sent.body.offset;
        opts.onProgress?.(offset, blob.size);
      }
    } catch (err) {
      // The host stands elsewhere (another push of the same blob ran meanwhile), or the connection broke
      // mid-piece (the host keeps what arrived): ask where it stands and go on from there.
      // A broken request may still hold the upload on the host for a moment (409): wait, then ask.
      const elsewhere = err instanceof ApiStatusError && err.code === 416;
      const busy = err instanceof ApiStatusError && err.code === 409;
      const broken = (err instanceof ConnectionError || err instanceof TimeoutError) && !opts.signal?.aborted;
      if (!(elsewhere || ((broken || busy) && ++retries <= MAX_RETRIES))) throw err;
      if (busy) await sleep(200 * retries, undefined, { signal: opts.signal });
      offset = (await client.request<{ offset: number }>('GET', upload, { signal: opts.signal })).offset;
    } finally {
      await it.return?.();
    }
  }
  const finished = await client.exchange<Finished>('PUT', upload, {
    signal: opts.signal,
    timeoutMs: FINISH_TIMEOUT_MS,
  });
  return done(finished.body, true);
}
