// The manifest of an image's blob: what travels between hosts, cut into fixed-size chunks, each named by
// its SHA-256. The bytes are canonical (keys in one order, no spaces, a trailing newline) so the same blob
// cut at the same size gives the same manifest on every host, and the manifest's own SHA-256 — the
// *manifest digest* — names it: a puller accepts a manifest only when it hashes to the digest a holder
// published, each chunk only when it hashes to its entry, and the finished image only when it hashes to
// `digest`. Parsing checks every field and the arithmetic between them (the number of chunks is
// ceil(size / chunkSize)) so a hostile manifest cannot make a host allocate or write out of bounds.

import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { IMAGES_API_VERSION } from '../model/images-api.ts';
import { DIGEST_PATTERN } from './digest.ts';
import { InvalidManifestError } from './errors.ts';

/** Manifests are objects of the image API's group. */
const MANIFEST_API_VERSION = IMAGES_API_VERSION;
/** The chunk sizes a host picks (chunkSizeFor); see the README for why. */
const MIN_PICKED_CHUNK = 1024 * 1024;
const MAX_PICKED_CHUNK = 4 * 1024 * 1024;
/** Chunks an image is cut into at most before its chunks grow past MIN_PICKED_CHUNK. */
const PICKED_CHUNKS = 2048;

/** The chunk size a host cuts a blob of `size` bytes by: `fixed` when the store was given one (tests), else
 *  the smallest power of two from 1 MiB that keeps it to about 2,048 chunks, at most 4 MiB (a 64 MiB image:
 *  64 chunks of 1 MiB; 11 GB: ~2,600 of 4 MiB). */
export function chunkSizeFor(size: number, fixed?: number): number {
  if (fixed !== undefined) return fixed;
  let chunk = MIN_PICKED_CHUNK;
  while (chunk < MAX_PICKED_CHUNK && size > chunk * PICKED_CHUNKS) chunk *= 2;
  return chunk;
}
/** Bounds a manifest may ask for: a chunk is held in memory while it is checked. */
const MIN_CHUNK_SIZE = 1024;
const MAX_CHUNK_SIZE = 64 * 1024 * 1024;
/** The largest manifest parsed (a 16 GiB image at 4 MiB is ~270 KB). */
export const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;

export type ImageKind = 'file' | 'directory';

export interface ImageManifest {
  apiVersion: typeof MANIFEST_API_VERSION;
  /** The image digest: of the file's bytes, or of the directory's canonical listing (digest.ts). */
  digest: string;
  kind: ImageKind;
  /** Bytes of the blob (the file, or the directory's canonical tar). */
  size: number;
  chunkSize: number;
  /** Lower-case hex SHA-256 of each chunk, in order. */
  chunks: string[];
}

const HEX64 = /^[0-9a-f]{64}$/;

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The canonical bytes of a manifest. */
export function encodeManifest(m: ImageManifest): Buffer {
  const ordered = {
    apiVersion: m.apiVersion,
    digest: m.digest,
    kind: m.kind,
    size: m.size,
    chunkSize: m.chunkSize,
    chunks: m.chunks,
  };
  return Buffer.from(`${JSON.stringify(ordered)}\n`);
}

/** `sha256:<hex>` of the manifest's bytes. */
export function manifestDigest(bytes: Uint8Array): string {
  return `sha256:${sha256Hex(bytes)}`;
}

function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

/** Where chunk `index` lies in the blob. */
export function chunkRange(m: ImageManifest, index: number): { offset: number; length: number } {
  if (!Number.isInteger(index) || index < 0 || index >= m.chunks.length)
    throw new RangeError(`chunk ${index} is not in the manifest of ${m.digest} (${m.chunks.length} chunks)`);
  const offset = index * m.chunkSize;
  return { offset, length: Math.min(m.chunkSize, m.size - offset) };
}

/**
 * Parses and checks manifest bytes. They must be canonical (re-encoding gives the same bytes), so the
 * manifest digest names one manifest only. Throws InvalidManifestError saying which field is wrong.
 */
export function parseManifest(bytes: Uint8Array, source = 'manifest'): ImageManifest {
  const bad = (why: string): never => {
    throw new InvalidManifestError(source, why);
  };
  if (bytes.length > MAX_MANIFEST_BYTES) bad(`${bytes.length} bytes, more than ${MAX_MANIFEST_BYTES}`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    return bad(`not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('not a JSON object');
  const m = raw as Record<string, unknown>;
  if (m.apiVersion !== MANIFEST_API_VERSION)
    bad(`apiVersion is ${JSON.stringify(m.apiVersion)}, not ${MANIFEST_API_VERSION}`);
  if (typeof m.digest !== 'string' || !DIGEST_PATTERN.test(m.digest)) bad('digest is not sha256:<64 hex>');
  if (m.kind !== 'file' && m.kind !== 'directory') bad('kind is neither file nor directory');
  const size = m.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    bad('size is not a non-negative integer');
  const chunkSize = m.chunkSize;
  if (
    typeof chunkSize !== 'number' ||
    !Number.isSafeInteger(chunkSize) ||
    chunkSize < MIN_CHUNK_SIZE ||
    chunkSize > MAX_CHUNK_SIZE
  )
    bad(`chunkSize is not an integer between ${MIN_CHUNK_SIZE} and ${MAX_CHUNK_SIZE}`);
  if (!Array.isArray(m.chunks)) return bad('chunks is not an array');
  const expected = chunkCount(size as number, chunkSize as number);
  if (m.chunks.length !== expected)
    bad(`${m.chunks.length} chunks where size ${size} at chunkSize ${chunkSize} makes ${expected}`);
  m.chunks.forEach((c, i) => {
    if (typeof c !== 'string' || !HEX64.test(c)) bad(`chunks[${i}] is not 64 lower-case hex digits`);
  });
  const manifest: ImageManifest = {
    apiVersion: MANIFEST_API_VERSION,
    digest: m.digest as string,
    kind: m.kind as ImageManifest['kind'],
    size: size as number,
    chunkSize: chunkSize as number,
    chunks: m.chunks as string[],
  };
  if (!encodeManifest(manifest).equals(Buffer.from(bytes)))
    bad(
      'not in canonical form (keys apiVersion, digest, kind, size, chunkSize, chunks; no spaces; one trailing newline)',
    );
  return manifest;
}

/** A blob file cut into chunks in one read: its size, each chunk's SHA-256 and the whole file's. */
export interface BlobCut {
  size: number;
  chunkSize: number;
  chunks: string[];
  /** Hex SHA-256 of the whole blob. */
  sha256: string;
}

/** Reads the blob file at `path` once, hashing each chunk and the whole. */
export async function cutBlob(
  path: string,
  opts: { chunkSize?: number; signal?: AbortSignal } = {},
): Promise<BlobCut> {
  const whole = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const chunkSize = chunkSizeFor(size, opts.chunkSize);
    const chunks: string[] = [];
    const buf = Buffer.allocUnsafe(Math.min(chunkSize, Math.max(size, 1)));
    for (let offset = 0; offset < size; offset += chunkSize) {
      opts.signal?.throwIfAborted();
      const length = Math.min(chunkSize, size - offset);
      const hash = createHash('sha256');
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, length - done), offset + done);
        if (bytesRead === 0) throw new Error(`${path} shrank while it was being read`);
        hash.update(buf.subarray(0, bytesRead));
        whole.update(buf.subarray(0, bytesRead));
        done += bytesRead;
      }
      chunks.push(hash.digest('hex'));
    }
    return { size, chunkSize, chunks, sha256: whole.digest('hex') };
  } finally {
    await fh.close();
  }
}

/** The manifest of image `digest` whose blob was cut as `cut`. */
export function manifestOf(cut: BlobCut, digest: string, kind: ImageKind): ImageManifest {
  return {
    apiVersion: MANIFEST_API_VERSION,
    digest,
    kind,
    size: cut.size,
    chunkSize: cut.chunkSize,
    chunks: cut.chunks,
  };
}

/** The manifest of the blob file at `path`: reads it once, chunk by chunk. */
export async function manifestOfFile(
  path: string,
  digest: string,
  kind: ImageKind,
  opts: { chunkSize?: number; signal?: AbortSignal } = {},
): Promise<ImageManifest> {
  return manifestOf(await cutBlob(path, opts), digest, kind);
}
