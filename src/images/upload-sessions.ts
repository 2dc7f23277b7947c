// Resumable uploads of image blobs, keyed by the blob's digest so a client needs no state of its own to
// resume: it asks where the upload of its digest stands and sends the rest. Each upload is a directory
// <cacheDir>/uploads/<blob hex>/ holding `info.json` (digest, size, kind) and `data` (the bytes so far;
// its length is the offset). A piece must start at the offset (else UploadOffsetError says where to go
// on from) and may not run past the announced size; what arrived of a piece cut short is kept. `finish`
// checks the whole blob's size and SHA-256 and commits it to the image store (image-store.ts), which for
// a directory extracts the tar safely and computes the image digest. Uploads untouched for
// `abandonAfterMs` are removed by `sweep`. The HTTP side is src/api/image-upload-route.ts.

import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { parseDigest } from './digest.ts';
import {
  BlobMismatchError,
  ImageTooLargeError,
  UploadBusyError,
  UploadIncompleteError,
  UploadNotFoundError,
  UploadOffsetError,
} from './errors.ts';
import { FILES, type ImportedImage } from './image-entry.ts';
import type { ImageStore } from './image-store.ts';
import { cutBlob, type ImageKind } from './manifest.ts';

const DEFAULT_ABANDON_AFTER_MS = 3600_000;

export interface UploadState {
  digest: string;
  size: number;
  kind: ImageKind;
  /** Bytes received so far. */
  offset: number;
}

export interface UploadSessionsInit {
  /** The largest blob accepted (xenosd's --max-image-size). */
  maxBytes: number;
  /** An upload untouched this long is removed by sweep(). Default 1 h. */
  abandonAfterMs?: number;
}

export class UploadSessions {
  readonly #store: ImageStore;
  readonly #init: UploadSessionsInit;
  readonly #root: string;
  readonly #busy = new Set<string>();

  constructor(components: { store: ImageStore }, init: UploadSessionsInit) {
    this.#store = components.store;
    this.#init = init;
    this.#root = join(components.store.cacheDir, 'uploads');
  }

  #dir(digest: string): string {
    return join(this.#root, parseDigest(digest));
  }

  /** Where the upload of `digest` stands, or undefined when none is in progress. */
  async state(digest: string): Promise<UploadState | undefined> {
    const dir = this.#dir(digest);
    const info = await readFile(join(dir, 'info.json'), 'utf8').catch(() => undefined);
    if (!info) return undefined;
    const { size, kind } = JSON.parse(info) as UploadState;
    const offset = (await stat(join(dir, 'data')).catch(() => undefined))?.size ?? 0;
    return { digest, size, kind, offset };
  }

  /**
   * Begins (or finds) the upload of a blob: the image already held when its blob is (nothing to send),
   * else the upload's state. An upload in progress with another size or kind starts over.
   */
  async begin(req: {
    digest: string;
    size: number;
    kind: ImageKind;
  }): Promise<{ held: ImportedImage } | { upload: UploadState }> {
    parseDigest(req.digest);
    if (req.size > this.#init.maxBytes)
      throw new ImageTooLargeError(
        `upload ${req.digest}`,
        this.#init.maxBytes,
        `${req.size} bytes announced`,
      );
    const held = await this.#store.findByBlob(req.digest);
    if (held) return { held };
    const current = await this.state(req.digest);
    if (current && current.size === req.size && current.kind === req.kind) return { upload: current };
    return this.#exclusive(req.digest, async () => {
      const dir = this.#dir(req.digest);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'data'), '');
      await writeFile(
        join(dir, 'info.json'),
        JSON.stringify({ digest: req.digest, size: req.size, kind: req.kind }),
      );
      return { upload: { ...req, offset: 0 } };
    });
  }

  async #exclusive<T>(digest: string, fn: () => Promise<T>): Promise<T> {
    if (this.#busy.has(digest)) throw new UploadBusyError(digest);
    this.#busy.add(digest);
    try {
      return await fn();
    } finally {
      this.#busy.delete(digest);
    }
  }

  /**
   * Appends `body` at `start`, which must be the current offset. A body running past the announced size
   * is cut there and refused; what arrived before a broken connection is kept (the client resumes).
   */
  async append(digest: string, start: number, body: Readable, signal?: AbortSignal): Promise<UploadState> {
    return this.#exclusive(digest, async () => {
      const state = await this.state(digest);
      if (!state) throw new UploadNotFoundError(digest);
      if (start !== state.offset) throw new UploadOffsetError(digest, state.offset, start);
      const fh = await open(join(this.#dir(digest), 'data'), 'r+');
      let offset = state.offset;
      try {
        for await (const piece of body as AsyncIterable<Buffer>) {
          signal?.throwIfAborted();
          if (offset + piece.length > state.size)
            throw new ImageTooLargeError(
              `upload ${digest}`,
              state.size,
              `more than the ${state.size} bytes announced`,
            );
          let done = 0;
          while (done < piece.length) {
            const { bytesWritten } = await fh.write(piece, done, piece.length - done, offset + done);
            done += bytesWritten;
          }
          offset += piece.length;
        }
      } finally {
        // Keep exactly what was written; whatever happened, the next piece starts there.
        await fh.truncate(offset);
        await fh.datasync();
        await fh.close();
      }
      return { ...state, offset };
    });
  }

  /** Checks the whole blob and commits it into the image store; the upload is gone afterwards. */
  async finish(digest: string, signal?: AbortSignal): Promise<ImportedImage> {
    return this.#exclusive(digest, async () => {
      const state = await this.state(digest);
      if (!state) {
        const held = await this.#store.findByBlob(digest);
        if (held) return held;
        throw new UploadNotFoundError(digest);
      }
      const dir = this.#dir(digest);
      const data = join(dir, 'data');
      if (state.offset !== state.size) throw new UploadIncompleteError(digest, state.offset, state.size);
      // One read: the whole blob's hash to check it, each chunk's for its manifest.
      const cut = await cutBlob(data, { chunkSize: this.#store.chunkSize, signal });
      const actual = `sha256:${cut.sha256}`;
      if (actual !== digest) {
        await rm(dir, { recursive: true, force: true });
        throw new BlobMismatchError(digest, `the ${state.size} bytes received hash to ${actual}`);
      }
      const staging = await this.#store.staging();
      await rename(data, join(staging, FILES.blob));
      await rm(dir, { recursive: true, force: true });
      const known = state.kind === 'file' ? { digest, size: state.size } : {};
      return this.#store.commit(
        { dir: staging, kind: state.kind, source: `upload ${digest}`, blobDigest: digest, cut, ...known },
        signal,
      );
    });
  }

  /** Drops an upload in progress. */
  async cancel(digest: string): Promise<void> {
    await this.#exclusive(digest, () => rm(this.#dir(digest), { recursive: true, force: true }));
  }

  /** Removes uploads nobody has written to for abandonAfterMs. */
  async sweep(now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    const limit = this.#init.abandonAfterMs ?? DEFAULT_ABANDON_AFTER_MS;
    for (const hex of await readdir(this.#root).catch(() => [] as string[])) {
      const digest = `sha256:${hex}`;
      if (this.#busy.has(digest)) continue;
      const st = await stat(join(this.#root, hex, 'data')).catch(() => undefined);
      const info = await stat(join(this.#root, hex, 'info.json')).catch(() => undefined);
      const touched = Math.max(st?.mtimeMs ?? 0, info?.mtimeMs ?? 0);
      if (now - touched > limit) {
        await rm(join(this.#root, hex), { recursive: true, force: true });
        removed.push(digest);
      }
    }
    return removed;
  }
}
