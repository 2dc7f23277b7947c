// An image being pulled chunk by chunk: its manifest (already checked against the manifest digest a
// holder published), the sparse blob the chunks are written into at their offsets with positional writes,
// and the have bitmap of verified chunks. A chunk is written only when its length and SHA-256 match its
// manifest entry; anything else is refused with ChunkHashMismatchError before a byte reaches the disk.
// The bitmap is saved (after the blob is fsync'd) every `syncEvery` chunks and on close, so a restarted
// xenosd resumes from it. Chunks it holds can be read while the pull goes on (so a puller serves others).
// `complete()` makes the usable image and checks the image digest (image-entry.ts). Made by ImageStore.

import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ChunkHashMismatchError } from './errors.ts';
import type { HaveBitmap } from './have-bitmap.ts';
import { FILES, readFully } from './image-entry.ts';
import { chunkRange, type ImageManifest } from './manifest.ts';

const DEFAULT_SYNC_EVERY = 8;

export interface PartialImageInit {
  dir: string;
  manifest: ImageManifest;
  manifestBytes: Buffer;
  manifestDigest: string;
  blob: FileHandle;
  have: HaveBitmap;
  syncEvery?: number;
  /** Does the finishing under the store's lock for this digest (ImageStore supplies it). */
  finish: (signal?: AbortSignal) => Promise<import('./image-entry.ts').ImportedImage>;
  /** Called once when closed or completed (the store forgets the open pull). */
  onClose: () => void;
}

export interface ChunkEvent {
  index: number;
  /** Verified bytes held, and the blob's size. */
  bytes: number;
  total: number;
}

export class PartialImage extends EventEmitter<{ chunk: [ChunkEvent] }> {
  readonly manifest: ImageManifest;
  readonly manifestBytes: Buffer;
  readonly manifestDigest: string;
  readonly #init: PartialImageInit;
  readonly #have: HaveBitmap;
  #unsaved = 0;
  #saving: Promise<void> = Promise.resolve();
  #closed = false;
  #bytes = 0;

  constructor(init: PartialImageInit) {
    super();
    this.#init = init;
    this.manifest = init.manifest;
    this.manifestBytes = init.manifestBytes;
    this.manifestDigest = init.manifestDigest;
    this.#have = init.have;
    for (let i = 0; i < this.manifest.chunks.length; i++)
      if (this.#have.has(i)) this.#bytes += chunkRange(this.manifest, i).length;
  }

  get digest(): string {
    return this.manifest.digest;
  }

  /** The indexes of the chunks still missing, in order. */
  missing(): number[] {
    return this.#have.missing();
  }

  haveCount(): number {
    return this.#have.count;
  }

  has(index: number): boolean {
    return this.#have.has(index);
  }

  /** Verified bytes held so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** A copy of the have bitmap (bit i = chunk i is held and verified). */
  bitmap(): Uint8Array {
    return this.#have.bits.slice();
  }

  /** Verifies chunk `index` and writes it at its offset. Throws ChunkHashMismatchError (nothing written)
   *  when the bytes are not the chunk the manifest names. Writing a chunk already held does nothing. */
  async writeChunk(index: number, bytes: Uint8Array): Promise<void> {
    if (this.#closed) throw new Error(`the pull of ${this.digest} is closed`);
    const { offset, length } = chunkRange(this.manifest, index);
    if (bytes.length !== length)
      throw new ChunkHashMismatchError(
        this.digest,
        index,
        `${bytes.length} bytes where the chunk has ${length}`,
      );
    const hash = createHash('sha256').update(bytes).digest('hex');
    if (hash !== this.manifest.chunks[index])
      throw new ChunkHashMismatchError(
        this.digest,
        index,
        `its bytes hash to ${hash}, the manifest says ${this.manifest.chunks[index]}`,
      );
    if (this.#have.has(index)) return;
    let written = 0;
    while (written < length) {
      const { bytesWritten } = await this.#init.blob.write(
        bytes,
        written,
        length - written,
        offset + written,
      );
      written += bytesWritten;
    }
    if (this.#have.has(index)) return; // the same chunk raced in from another holder
    this.#have.set(index);
    this.#bytes += length;
    if (++this.#unsaved >= (this.#init.syncEvery ?? DEFAULT_SYNC_EVERY)) await this.flush();
    this.emit('chunk', { index, bytes: this.#bytes, total: this.manifest.size });
  }

  /** A held chunk's bytes (verified when written), or undefined when it is not held yet. */
  async readChunk(index: number): Promise<Buffer | undefined> {
    if (this.#closed || !this.#have.has(index)) return undefined;
    const { offset, length } = chunkRange(this.manifest, index);
    return readFully(this.#init.blob, offset, length);
  }

  /** Makes what was written durable: the blob's bytes first, then the bitmap that claims them. */
  flush(): Promise<void> {
    this.#saving = this.#saving.then(async () => {
      if (this.#unsaved === 0 || this.#closed) return;
      this.#unsaved = 0;
      await this.#init.blob.datasync();
      await this.#have.save(join(this.#init.dir, FILES.have));
    });
    return this.#saving;
  }

  /** Once every chunk is held: the usable image, its digest checked (see ImageStore.beginPull). */
  async complete(signal?: AbortSignal): Promise<import('./image-entry.ts').ImportedImage> {
    if (!this.#have.complete)
      throw new Error(
        `the pull of ${this.digest} misses ${this.manifest.chunks.length - this.#have.count} chunks`,
      );
    await this.close();
    return this.#init.finish(signal);
  }

  /** Saves the bitmap and closes the blob; the pull can be begun again later and resumes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
    await this.#saving;
    await this.#init.blob.close();
    this.#init.onClose();
  }

  get closed(): boolean {
    return this.#closed;
  }
}
