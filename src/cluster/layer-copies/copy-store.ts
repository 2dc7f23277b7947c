// The copies of other hosts' instances this host keeps (spec.failover.copyEverySeconds): one per instance
// uid, the newest, as `<uid>.tar` (the driver's copy of the domain's disk layer) beside `<uid>.json` (whose,
// from which host, when, under which failover epoch). A copy arrives as `<uid>.tar.incoming` and takes the
// old one's place only once whole, so a broken transfer never leaves half a copy where failover would use
// it. Root-only files in the data dir: a copy holds another domain's files and no domain can read it.

import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** What a copy is of, as its sender declared it. */
export interface CopyMeta {
  namespace: string;
  name: string;
  uid: string;
  /** The instance's failover epoch when the copy was taken: a copy is restored only after a failover
   *  raised it. */
  epoch: number;
  takenAt: string;
  /** The host it was taken on (where the domain ran). */
  host: string;
  /** The driver that wrote it (only that driver can make a domain from it). */
  driver: string;
}

export interface HeldCopy extends CopyMeta {
  bytes: number;
  /** The copy's file on this host. */
  path: string;
}

/** A copy bigger than the store takes. */
export class CopyTooLargeError extends Error {
  constructor(max: number) {
    super(`the copy is over the cap of ${max} bytes this host keeps for one instance`);
    this.name = 'CopyTooLargeError';
  }
}

/** A copy refused because the keeper's disk is nearly full. */
export class CopyNoRoomError extends Error {
  constructor(free: number, min: number) {
    super(
      `this host has ${Math.floor(free / 2 ** 20)} MiB free for copies, under the ${Math.floor(min / 2 ** 20)} MiB it keeps free`,
    );
    this.name = 'CopyNoRoomError';
  }
}

export const UID_PATTERN = /^[A-Za-z0-9-]{1,64}$/;
/** What a keeper leaves free on its data disk: copies never fill it. */
export const DEFAULT_MIN_FREE_BYTES = 1024 ** 3;

export class LayerCopyStore {
  readonly dir: string;
  readonly #minFree: number;
  readonly #held = new Map<string, HeldCopy>();

  constructor(init: { dir: string; minFreeBytes?: number }) {
    this.dir = init.dir;
    this.#minFree = init.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES;
  }

  /** Reads what is kept (after a restart); half-received copies are dropped. */
  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(this.dir)) {
      if (name.endsWith('.incoming')) {
        await rm(join(this.dir, name), { force: true });
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const copy = JSON.parse(await readFile(join(this.dir, name), 'utf8')) as HeldCopy;
        if (UID_PATTERN.test(copy.uid)) this.#held.set(copy.uid, { ...copy, path: this.#tar(copy.uid) });
      } catch {
        // A record cut short by a crash: its copy is of no use without it.
        await rm(join(this.dir, name), { force: true });
      }
    }
  }

  get(uid: string): HeldCopy | undefined {
    return this.#held.get(uid);
  }

  list(): HeldCopy[] {
    return [...this.#held.values()];
  }

  /** Keeps the copy `body` carries (at most `maxBytes`, and never leaving less than the store's minimum
   *  free on its disk) in place of the instance's older one. */
  async receive(meta: CopyMeta, body: Readable, maxBytes: number, signal?: AbortSignal): Promise<HeldCopy> {
    if (!UID_PATTERN.test(meta.uid)) throw new Error(`uid ${JSON.stringify(meta.uid)} is not a uid`);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const fs = await statfs(this.dir);
    const free = fs.bavail * fs.bsize;
    if (free < this.#minFree) throw new CopyNoRoomError(free, this.#minFree);
    const cap = Math.min(maxBytes, free - this.#minFree);
    const incoming = `${this.#tar(meta.uid)}.incoming`;
    let bytes = 0;
    const capped = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes <= cap) return done(null, chunk);
        done(bytes > maxBytes ? new CopyTooLargeError(maxBytes) : new CopyNoRoomError(free - bytes, 0));
      },
    });
    try {
      await pipeline(body, capped, createWriteStream(incoming, { mode: 0o600 }), { signal });
    } catch (err) {
      await rm(incoming, { force: true });
      throw err;
    }
    const copy: HeldCopy = { ...meta, bytes, path: this.#tar(meta.uid) };
    const record = join(this.dir, `${meta.uid}.json.incoming`);
    await writeFile(record, JSON.stringify(copy), { mode: 0o600 });
    await rename(incoming, copy.path);
    await rename(record, join(this.dir, `${meta.uid}.json`));
    this.#held.set(meta.uid, copy);
    return copy;
  }

  async remove(uid: string): Promise<void> {
    if (!UID_PATTERN.test(uid)) return;
    this.#held.delete(uid);
    await rm(join(this.dir, `${uid}.json`), { force: true });
    await rm(this.#tar(uid), { force: true });
  }

  #tar(uid: string): string {
    return join(this.dir, `${uid}.tar`);
  }
}
