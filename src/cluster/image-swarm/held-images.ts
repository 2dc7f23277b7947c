// What this host's image store holds, as the cluster is told: the complete images for Host.status.images
// (`{digest, manifest, size}`, sorted, so the Host controller writes only when the set changes, never
// progress) and the digests it can serve a chunk of (complete or partial: the DHT announcements). Read
// again every `rescanMs` and whenever asked (a pull finished, an upload, a removal), and listeners are told
// when either set changes. A single host without the overlay still reports its images.

import type { ImageStore } from '../../images/image-store.ts';
import { type Log, silentLogger } from '../../log/logger.ts';
import type { HostImage } from '../../model/host.ts';

export interface HeldImagesComponents {
  images: Pick<ImageStore, 'list'>;
  log?: Log;
}

export class HeldImages {
  readonly #c: HeldImagesComponents;
  readonly #rescanMs: number;
  readonly #log: Log;
  readonly #listeners = new Set<() => void>();
  #complete: HostImage[] = [];
  #serving = new Set<string>();
  #key = '';
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #again = false;

  constructor(components: HeldImagesComponents, init: { rescanMs?: number } = {}) {
    this.#c = components;
    this.#log = components.log ?? silentLogger.root;
    this.#rescanMs = init.rescanMs ?? 5000;
  }

  async start(): Promise<void> {
    await this.rescan();
    this.#timer ??= setInterval(() => void this.rescan(), this.#rescanMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#scanning;
  }

  /** Complete images, sorted by digest. */
  get complete(): HostImage[] {
    return this.#complete;
  }

  /** Digests this host holds at least one verified chunk of. */
  get serving(): ReadonlySet<string> {
    return this.#serving;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Reads the store again; resolves once a read that started after this call has finished. */
  rescan(): Promise<void> {
    if (this.#scanning) {
      this.#again = true;
      return this.#scanning;
    }
    this.#scanning = (async () => {
      do {
        this.#again = false;
        await this.#scan();
      } while (this.#again);
    })().finally(() => {
      this.#scanning = undefined;
    });
    return this.#scanning;
  }

  async #scan(): Promise<void> {
    let entries: Awaited<ReturnType<ImageStore['list']>>;
    try {
      entries = await this.#c.images.list();
    } catch (err) {
      this.#log.warn({ err }, `reading the image store: ${(err as Error).message}`);
      return;
    }
    const complete = entries
      .filter((e) => e.complete && e.manifestDigest !== undefined && e.blobSize !== undefined)
      .map((e) => ({
        digest: e.digest,
        manifest: e.manifestDigest!,
        size: e.blobSize!,
        ...(e.kind ? { kind: e.kind } : {}),
      }))
      .sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
    const serving = new Set(entries.filter((e) => e.haveChunks > 0).map((e) => e.digest));
    const key = JSON.stringify([complete, [...serving].sort()]);
    if (key === this.#key) return;
    this.#key = key;
    this.#complete = complete;
    this.#serving = serving;
    for (const l of this.#listeners) l();
  }
}
