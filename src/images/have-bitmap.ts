// Which chunks of a blob this host holds, verified: one bit per chunk (bit i of byte i>>3, least significant
// bit first, as BitTorrent's `bitfield` but LSB-first), kept in the image's `have` file. The file is
// replaced atomically (write a temporary file, fsync it, rename), and only after the blob's bytes have been
// fsync'd (partial-image.ts), so after a crash every bit still set names a chunk that is on disk.

import { open, readFile, rename } from 'node:fs/promises';

export class HaveBitmap {
  readonly bits: Uint8Array;
  readonly length: number;
  #count = 0;

  constructor(length: number, bits?: Uint8Array) {
    this.length = length;
    this.bits = new Uint8Array(Math.ceil(length / 8));
    if (bits) {
      this.bits.set(bits.subarray(0, this.bits.length));
      // Bits past the end mean nothing: clear them so counts and comparisons hold.
      if (length % 8 && this.bits.length) this.bits[this.bits.length - 1] &= (1 << (length % 8)) - 1;
      for (let i = 0; i < length; i++) if (this.has(i)) this.#count++;
    }
  }

  static full(length: number): HaveBitmap {
    const b = new HaveBitmap(length);
    for (let i = 0; i < length; i++) b.set(i);
    return b;
  }

  has(index: number): boolean {
    return index >= 0 && index < this.length && (this.bits[index >> 3] & (1 << (index & 7))) !== 0;
  }

  set(index: number): void {
    if (index < 0 || index >= this.length) throw new RangeError(`chunk ${index} of ${this.length}`);
    if (this.has(index)) return;
    this.bits[index >> 3] |= 1 << (index & 7);
    this.#count++;
  }

  clear(index: number): void {
    if (!this.has(index)) return;
    this.bits[index >> 3] &= ~(1 << (index & 7));
    this.#count--;
  }

  get count(): number {
    return this.#count;
  }

  get complete(): boolean {
    return this.#count === this.length;
  }

  /** The indexes not held, in order. */
  missing(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.length; i++) if (!this.has(i)) out.push(i);
    return out;
  }

  /** Reads `path`; a missing or short file means the chunks it does not cover are not held. */
  static async load(path: string, length: number): Promise<HaveBitmap> {
    const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    return new HaveBitmap(length, bytes);
  }

  /** Replaces `path` atomically with this bitmap, durably. */
  async save(path: string): Promise<void> {
    const tmp = `${path}.tmp`;
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(this.bits);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  }
}
