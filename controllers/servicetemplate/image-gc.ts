// Image garbage collection on one host, in the manner of the kubelet's: an image (complete, or a pull
// left behind) that no ServiceTemplate of the cluster names — by spec.image.digest or status.digest, in
// any namespace — and that no domain on this host has (the driver's list: running, stopped or merely
// prepared, since a domain's disk is a copy-on-write layer over the image) is removed once it has been
// unused for the grace period (`--image-gc-grace`, default 1 h) and was imported at least that long ago
// (so an image pushed before its template is applied survives). Each round also removes uploads nobody
// wrote to for their timeout and staging directories a stopped xenosd left behind. The unused-since clock
// lives in memory: a restarted host waits a whole grace period again, never less. A round in which the
// driver cannot list its domains removes nothing; the references are read again right before each removal.

import type { Driver } from '../../src/drivers/driver.ts';
import type { ImageStore } from '../../src/images/image-store.ts';
import { type Log, silentLogger } from '../../src/log/logger.ts';
import { SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import type { Store } from '../../src/store/store.ts';

export const DEFAULT_IMAGE_GC_GRACE_MS = 3600_000;
const MAX_INTERVAL_MS = 5 * 60_000;

export interface ImageGcComponents {
  store: Store;
  images: ImageStore;
  /** Whose domains hold images; without one, no domain holds any. */
  driver?: Pick<Driver, 'list'>;
  /** Abandoned uploads to sweep each round. */
  uploads?: { sweep(now?: number): Promise<unknown> };
  log?: Log;
}

export interface ImageGcInit {
  /** Default DEFAULT_IMAGE_GC_GRACE_MS (1 h). */
  graceMs?: number;
  /** How often a round runs; default a quarter of the grace, at most 5 min. */
  intervalMs?: number;
  now?: () => number;
}

export class ImageGc {
  readonly #c: ImageGcComponents;
  readonly #graceMs: number;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #log: Log;
  /** Digest → when it was first seen unused. */
  readonly #unusedSince = new Map<string, number>();
  #timer?: NodeJS.Timeout;
  #round?: Promise<unknown>;
  #abort = new AbortController();

  constructor(components: ImageGcComponents, init: ImageGcInit = {}) {
    this.#c = components;
    this.#graceMs = init.graceMs ?? DEFAULT_IMAGE_GC_GRACE_MS;
    this.#intervalMs = init.intervalMs ?? Math.min(MAX_INTERVAL_MS, Math.max(1000, this.#graceMs / 4));
    this.#now = init.now ?? Date.now;
    this.#log = components.log ?? silentLogger.root;
  }

  start(): void {
    if (this.#timer) return;
    this.#abort = new AbortController();
    this.#timer = setInterval(() => {
      if (this.#round) return;
      this.#round = this.collect()
        .catch((err) =>
          this.#log.error({ err }, `image garbage collection failed: ${(err as Error).message}`),
        )
        .finally(() => {
          this.#round = undefined;
        });
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
    await this.#round;
  }

  /** The digests templates name, and those of this host's domains (undefined when the driver cannot say). */
  async #inUse(): Promise<Set<string> | undefined> {
    const used = new Set<string>();
    for (const t of this.#c.store.list(SERVICE_TEMPLATE.kind).items) {
      if (t.spec?.image?.digest) used.add(t.spec.image.digest);
      if (t.status?.digest) used.add(t.status.digest);
    }
    if (this.#c.driver) {
      try {
        for (const d of await this.#c.driver.list({ signal: this.#abort.signal }))
          if (d.imageDigest) used.add(d.imageDigest);
      } catch (err) {
        this.#log.warn({ err }, `image garbage collection skipped: the driver cannot list its domains`);
        return undefined;
      }
    }
    return used;
  }

  /** One round; returns the digests removed. */
  async collect(): Promise<string[]> {
    const now = this.#now();
    await this.#c.uploads?.sweep(now);
    await this.#c.images.sweepStaging(this.#graceMs, now);
    const used = await this.#inUse();
    if (!used) return [];
    const removed: string[] = [];
    const stored = await this.#c.images.list();
    for (const id of this.#unusedSince.keys())
      if (!stored.some((s) => s.digest === id)) this.#unusedSince.delete(id);
    for (const image of stored) {
      if (used.has(image.digest) || this.#c.images.pulling(image.digest)) {
        this.#unusedSince.delete(image.digest);
        continue;
      }
      const since = this.#unusedSince.get(image.digest) ?? now;
      this.#unusedSince.set(image.digest, since);
      const imported = image.importedAt ? Date.parse(image.importedAt) : since;
      if (now - since < this.#graceMs || now - imported < this.#graceMs) continue;
      // Read the references again: a template may have been applied while this round ran.
      const again = await this.#inUse();
      if (!again || again.has(image.digest)) continue;
      await this.#c.images.remove(image.digest);
      this.#unusedSince.delete(image.digest);
      removed.push(image.digest);
      this.#log.info(
        { digest: image.digest },
        `removed image ${image.digest}: no template or domain used it for ${Math.round(this.#graceMs / 1000)} s`,
      );
    }
    return removed;
  }
}
