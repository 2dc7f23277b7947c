// This host's content-addressed image store: complete images (usable, with the blob and manifest they
// travel as) and pulls in progress, one directory per image digest (layout in image-entry.ts). It is what
// the template controller imports into (local paths, URLs: import-image.ts), what the upload API finishes
// uploads into (importBlob), what a swarm pull writes chunks into (beginPull → PartialImage) and what
// serves chunks to peers (manifest, haveBitmap, readChunk). Work on one digest — an import, a pull being
// begun or finished, a removal — is serialised in this process; across processes the data dir's lock
// keeps one xenosd per store. Entries made before blobs existed (image + meta.json only) get their blob
// and manifest on first use (`manifest()`).
// Over 400 lines because every way into the store (import, upload, pull, legacy entries) must commit
// through the same staging and locking.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DIGEST_PATTERN, parseDigest, sha256File } from './digest.ts';
import { ImageDigestMismatchError, ManifestDigestMismatchError } from './errors.ts';
import { HaveBitmap } from './have-bitmap.ts';
import {
  cachedImage,
  entryDir,
  FILES,
  finishImage,
  type ImageMeta,
  type ImportedImage,
  linkBlob,
  readMeta,
  readRangeOf,
  writeFileAtomic,
  writeMeta,
} from './image-entry.ts';
import { addBlob } from './legacy-entry.ts';
import {
  type BlobCut,
  chunkRange,
  chunkSizeFor,
  cutBlob,
  encodeManifest,
  type ImageKind,
  type ImageManifest,
  manifestDigest,
  manifestOf,
  parseManifest,
  sha256Hex,
} from './manifest.ts';
import { PartialImage } from './partial-image.ts';

export interface ImageStoreInit {
  /** DATA_DIR/images. */
  cacheDir: string;
  /** Chunk size of the manifests this host makes. Default: by the image's size (chunkSizeFor, 1–4 MiB). */
  chunkSize?: number;
  /** A pull's bitmap is saved every this many chunks. Default 8. */
  syncEvery?: number;
}

/** One entry of the store, complete or being pulled. */
export interface StoredImage {
  digest: string;
  complete: boolean;
  kind?: ImageKind;
  /** Bytes of the file or of the directory's files (complete images). */
  size?: number;
  /** Bytes of the blob and its manifest's digest (absent for an entry not yet given a blob). */
  blobSize?: number;
  manifestDigest?: string;
  blobDigest?: string;
  chunks: number;
  haveChunks: number;
  importedAt?: string;
}

/** A blob staged in `dir` (a fresh directory of the store's tmp/): `dir/blob` and, for a directory, the
 *  tree `dir/image` it was packed from (already digested), or nothing and the store extracts it. */
export interface StagedBlob {
  dir: string;
  kind: ImageKind;
  source: string;
  /** The image digest and size when already known (a local directory digested before packing). */
  digest?: string;
  size?: number;
  /** The digest the result must have (a template's spec.image.digest). */
  expectedDigest?: string;
  /** sha256 of the blob, when already known (uploads, downloads). */
  blobDigest?: string;
  /** The blob already cut into chunks (an upload, hashed once as it was checked). */
  cut?: BlobCut;
}

export class ImageStore {
  readonly cacheDir: string;
  /** The fixed chunk size this store was made with, or undefined: by each image's size (chunkSizeFor). */
  readonly chunkSize: number | undefined;
  readonly #init: ImageStoreInit;
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #pulls = new Map<string, PartialImage>();
  /** Staging directories in use by this process (sweepStaging leaves them alone). */
  readonly #staging = new Set<string>();

  constructor(init: ImageStoreInit) {
    this.#init = init;
    this.cacheDir = init.cacheDir;
    this.chunkSize = init.chunkSize;
  }

  /** The complete image with this digest, if this host has it. */
  get(digest: string): Promise<ImportedImage | undefined> {
    return cachedImage(this.cacheDir, digest);
  }

  /** A fresh staging directory under tmp/ (same file system as the entries, so renames are atomic). */
  async staging(): Promise<string> {
    const root = join(this.cacheDir, 'tmp');
    await mkdir(root, { recursive: true });
    const dir = join(root, `${Date.now()}-${randomBytes(6).toString('hex')}`);
    await mkdir(dir);
    this.#staging.add(dir);
    return dir;
  }

  /** Removes a staging directory that will not be committed. */
  async discardStaging(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
    this.#staging.delete(dir);
  }

  /** Whether a pull of this image is open in this process. */
  pulling(digest: string): boolean {
    return this.#pulls.has(parseDigest(digest));
  }

  /** Runs `fn` alone for this digest (imports, pulls being begun or finished, removals). */
  async #exclusive<T>(digest: string, fn: () => Promise<T>): Promise<T> {
    const key = parseDigest(digest);
    const before = this.#locks.get(key) ?? Promise.resolve();
    const run = before.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    this.#locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    }
  }

  /**
   * Turns a staged blob into a complete entry: extracts a directory blob (when its tree is not staged),
   * checks the digest, writes the manifest, a full bitmap and meta.json, and renames the staging
   * directory into place. Returns the existing entry when the image is already complete. The staging
   * directory is gone afterwards either way.
   */
  async commit(staged: StagedBlob, signal?: AbortSignal): Promise<ImportedImage> {
    const { dir } = staged;
    try {
      let digest = staged.digest;
      let size: number;
      if (digest === undefined) {
        ({ digest, size } = await finishImage(
          dir,
          staged.kind,
          staged.source,
          staged.expectedDigest,
          signal,
        ));
      } else {
        if (staged.expectedDigest !== undefined && digest !== staged.expectedDigest)
          throw new ImageDigestMismatchError(staged.source, staged.expectedDigest, digest);
        size = staged.size ?? (await stat(join(dir, FILES.blob))).size;
        if (staged.kind === 'file') await linkBlob(dir);
      }
      const existing = await this.get(digest);
      if (existing) return existing;
      const blob = join(dir, FILES.blob);
      const cut =
        staged.cut && staged.cut.chunkSize === chunkSizeFor(staged.cut.size, this.chunkSize)
          ? staged.cut
          : await cutBlob(blob, { chunkSize: this.chunkSize, signal });
      const manifest = manifestOf(cut, digest, staged.kind);
      await writeFileAtomic(join(dir, FILES.manifest), encodeManifest(manifest));
      await HaveBitmap.full(manifest.chunks.length).save(join(dir, FILES.have));
      const meta: ImageMeta = {
        digest,
        kind: staged.kind,
        size,
        blobSize: manifest.size,
        blobDigest: staged.blobDigest ?? `sha256:${cut.sha256}`,
        source: staged.source,
        importedAt: new Date().toISOString(),
      };
      await writeMeta(dir, meta);
      const final = entryDir(this.cacheDir, digest);
      return await this.#exclusive(digest, async () => {
        const raced = await this.get(digest);
        if (raced) return raced;
        // A pull of the same image that had not finished: the staged copy is whole, it wins.
        await this.#discard(digest);
        await mkdir(join(this.cacheDir, 'sha256'), { recursive: true });
        await rename(dir, final);
        return { digest, path: join(final, FILES.image), size, kind: staged.kind };
      });
    } finally {
      await this.discardStaging(dir);
    }
  }

  /** Every entry: complete images and pulls in progress. */
  async list(): Promise<StoredImage[]> {
    const root = join(this.cacheDir, 'sha256');
    const names = await readdir(root).catch(() => [] as string[]);
    const out: StoredImage[] = [];
    for (const hex of names.sort()) {
      const digest = `sha256:${hex}`;
      if (!DIGEST_PATTERN.test(digest)) continue;
      const dir = join(root, hex);
      const meta = await readMeta(dir);
      const bytes = await readFile(join(dir, FILES.manifest)).catch(() => undefined);
      const manifest = bytes && tryParse(bytes);
      if (!meta && !manifest) continue; // a pull that has not written its manifest yet
      const running = this.#pulls.get(hex);
      const chunks = manifest?.chunks.length ?? 0;
      const have = meta
        ? chunks
        : (running?.haveCount() ?? (await HaveBitmap.load(join(dir, FILES.have), chunks)).count);
      out.push({
        digest,
        complete: meta !== undefined,
        kind: meta?.kind ?? manifest?.kind,
        size: meta?.size,
        blobSize: manifest?.size ?? meta?.blobSize,
        manifestDigest: bytes && manifest ? manifestDigest(bytes) : undefined,
        blobDigest: meta?.blobDigest,
        chunks,
        haveChunks: have,
        importedAt: meta?.importedAt,
      });
    }
    return out;
  }

  /** The complete image whose blob has this sha256 (an upload of something already held). */
  async findByBlob(blobDigest: string): Promise<ImportedImage | undefined> {
    for (const s of await this.list()) {
      if (s.complete && (s.blobDigest === blobDigest || (s.kind === 'file' && s.digest === blobDigest)))
        return this.get(s.digest);
    }
    return undefined;
  }

  /** The exact manifest bytes of an image held wholly or in part; undefined when it is not held. An entry
   *  made before blobs existed is given its blob and manifest here, once. */
  async manifest(digest: string): Promise<Buffer | undefined> {
    const dir = entryDir(this.cacheDir, digest);
    const bytes = await readFile(join(dir, FILES.manifest)).catch(() => undefined);
    if (bytes) return bytes;
    if (!(await readMeta(dir))) return undefined;
    return this.#exclusive(digest, () => addBlob(dir, this.chunkSize));
  }

  /** Whether this host holds the image whole and did not pull it from peers (it was uploaded, imported or
   *  downloaded here): where the swarm for it starts. */
  async seeds(digest: string): Promise<boolean> {
    const meta = await readMeta(entryDir(this.cacheDir, digest));
    return meta !== undefined && meta.pulled !== true;
  }

  /** The have bitmap of an image held wholly or in part (all ones when complete). */
  async haveBitmap(digest: string): Promise<Uint8Array | undefined> {
    const running = this.#pulls.get(parseDigest(digest));
    if (running) return running.bitmap();
    const bytes = await this.manifest(digest);
    if (!bytes) return undefined;
    const dir = entryDir(this.cacheDir, digest);
    const manifest = parseManifest(bytes, dir);
    if (await readMeta(dir)) return HaveBitmap.full(manifest.chunks.length).bits;
    return (await HaveBitmap.load(join(dir, FILES.have), manifest.chunks.length)).bits;
  }

  /**
   * A chunk this host holds and has verified, or undefined. With `verify` (the default) its hash is
   * checked again as it is read, so a blob damaged on this disk is never served.
   */
  async readChunk(
    digest: string,
    index: number,
    opts: { signal?: AbortSignal; verify?: boolean } = {},
  ): Promise<Buffer | undefined> {
    const running = this.#pulls.get(parseDigest(digest));
    const bytes = running ? undefined : await this.manifest(digest);
    const manifest = running?.manifest ?? (bytes && parseManifest(bytes));
    if (!manifest || !Number.isInteger(index) || index < 0 || index >= manifest.chunks.length)
      return undefined;
    opts.signal?.throwIfAborted();
    let chunk: Buffer | undefined;
    if (running) chunk = await running.readChunk(index);
    else {
      const dir = entryDir(this.cacheDir, digest);
      const have = (await readMeta(dir))
        ? undefined
        : await HaveBitmap.load(join(dir, FILES.have), manifest.chunks.length);
      if (have && !have.has(index)) return undefined;
      chunk = await readRangeOf(join(dir, FILES.blob), chunkRange(manifest, index));
    }
    if (chunk && opts.verify !== false && sha256Hex(chunk) !== manifest.chunks[index]) return undefined;
    return chunk;
  }

  /**
   * Begins (or resumes) pulling the image `manifestBytes` describes. The bytes must hash to
   * `expectedManifestDigest` (what a holder published) and be a valid manifest. A pull of the same
   * manifest already open in this process is returned as is; one left on disk resumes from its bitmap;
   * one of another manifest of the same image is discarded. An image already complete gives a pull
   * with nothing missing whose complete() returns it.
   */
  async beginPull(manifestBytes: Buffer, expectedManifestDigest: string): Promise<PartialImage> {
    const actual = manifestDigest(manifestBytes);
    if (actual !== expectedManifestDigest)
      throw new ManifestDigestMismatchError(expectedManifestDigest, actual);
    const manifest = parseManifest(manifestBytes, expectedManifestDigest);
    const hex = parseDigest(manifest.digest);
    return this.#exclusive(manifest.digest, async () => {
      const running = this.#pulls.get(hex);
      if (running && running.manifestDigest === actual) return running;
      if (running) await running.close();
      const dir = entryDir(this.cacheDir, manifest.digest);
      const complete = await readMeta(dir);
      const onDisk = await readFile(join(dir, FILES.manifest)).catch(() => undefined);
      if (!complete && !onDisk?.equals(manifestBytes)) {
        await this.#discard(manifest.digest);
        await mkdir(dir, { recursive: true });
        const fh = await open(join(dir, FILES.blob), 'w');
        await fh.truncate(manifest.size);
        await fh.close();
        await new HaveBitmap(manifest.chunks.length).save(join(dir, FILES.have));
        await writeFileAtomic(join(dir, FILES.manifest), manifestBytes);
      }
      const have = complete
        ? HaveBitmap.full(manifest.chunks.length)
        : await HaveBitmap.load(join(dir, FILES.have), manifest.chunks.length);
      const blob = await open(join(dir, FILES.blob), complete ? 'r' : 'r+');
      const pull = new PartialImage({
        dir,
        manifest,
        manifestBytes,
        manifestDigest: actual,
        blob,
        have,
        syncEvery: this.#init.syncEvery,
        finish: (signal) => this.#finishPull(manifest, signal),
        onClose: () => {
          if (this.#pulls.get(hex) === pull) this.#pulls.delete(hex);
        },
      });
      if (!complete) this.#pulls.set(hex, pull);
      return pull;
    });
  }

  async #finishPull(manifest: ImageManifest, signal?: AbortSignal): Promise<ImportedImage> {
    return this.#exclusive(manifest.digest, async () => {
      const done = await this.get(manifest.digest);
      if (done) return done;
      const dir = entryDir(this.cacheDir, manifest.digest);
      const source = `${manifest.digest} (pulled)`;
      let got: { digest: string; size: number };
      try {
        got = await finishImage(dir, manifest.kind, source, manifest.digest, signal);
      } catch (err) {
        // Every chunk matched the manifest, yet the image does not: the manifest was wrong. Start over.
        if (!signal?.aborted) await this.#discard(manifest.digest);
        throw err;
      }
      await writeMeta(dir, {
        digest: got.digest,
        kind: manifest.kind,
        size: got.size,
        blobSize: manifest.size,
        blobDigest:
          manifest.kind === 'file' ? got.digest : `sha256:${await sha256File(join(dir, FILES.blob), signal)}`,
        source: 'pulled from peers',
        pulled: true,
        importedAt: new Date().toISOString(),
      });
      return { digest: got.digest, path: join(dir, FILES.image), size: got.size, kind: manifest.kind };
    });
  }

  /** Removes an image, complete or partial (an open pull is closed first). */
  remove(digest: string): Promise<void> {
    return this.#exclusive(digest, () => this.#discard(digest));
  }

  /** Moves the entry out of sight in one rename, then deletes it. Call under the digest's lock. */
  async #discard(digest: string): Promise<void> {
    await this.#pulls.get(parseDigest(digest))?.close();
    const dir = entryDir(this.cacheDir, digest);
    const gone = await this.staging();
    try {
      await rename(dir, join(gone, 'entry'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    } finally {
      await this.discardStaging(gone);
    }
  }

  /** Removes staging directories left by a process that stopped mid-import (older than `olderThanMs`). */
  async sweepStaging(olderThanMs: number, now = Date.now()): Promise<void> {
    const root = join(this.cacheDir, 'tmp');
    for (const name of await readdir(root).catch(() => [] as string[])) {
      if (this.#staging.has(join(root, name))) continue;
      const st = await stat(join(root, name)).catch(() => undefined);
      if (st && now - st.mtimeMs > olderThanMs) await rm(join(root, name), { recursive: true, force: true });
    }
  }
}

function tryParse(bytes: Buffer): ImageManifest | undefined {
  try {
    return parseManifest(bytes);
  } catch {
    return undefined;
  }
}
