// Where the controllers get an image from: `ensure(digest)` gives the local image, fetching it first when
// this host does not hold it (from its peers, in a cluster: src/cluster/image-swarm), and reports how far
// the fetch is. Controllers depend on this interface, never on how the bytes travel. Also the rule for
// writing that progress into an object's status: often enough to watch, rarely enough not to flood the
// replicated store.

import type { ImportedImage } from './image-entry.ts';

/** How far getting an image is, on this host. */
export interface ImageProgress {
  digest: string;
  /** Verified bytes of the image's blob here. */
  bytes: number;
  /** Bytes of the whole blob. */
  size: number;
  /** floor(100 * bytes / size); 100 for an empty blob. */
  percent: number;
  /** Peers sending chunks now. */
  holders: number;
}

export interface EnsureOptions {
  signal?: AbortSignal;
  onProgress?: (progress: ImageProgress) => void;
}

export interface ImageSource {
  /** The local image with this digest; fetched first when this host does not hold it. Rejects when it
   *  cannot be had (no holder, every holder failed) with an error saying why. */
  ensure(digest: string, options?: EnsureOptions): Promise<ImportedImage>;
}

/**
 * Calls `write` with the latest progress at most every `everyMs`, or sooner when the percentage moved by
 * `stepPercent` since the last write; the first and the finishing (100 %) report always go. What was
 * held back goes out at `flush()`.
 */
export function progressThrottle(
  write: (progress: ImageProgress) => void,
  { everyMs = 2000, stepPercent = 5, now = Date.now } = {},
): { report(progress: ImageProgress): void; flush(): void } {
  let lastAt = Number.NEGATIVE_INFINITY;
  let lastPercent = Number.NEGATIVE_INFINITY;
  let pending: ImageProgress | undefined;
  const emit = (p: ImageProgress) => {
    pending = undefined;
    lastAt = now();
    lastPercent = p.percent;
    write(p);
  };
  return {
    report(p) {
      const due =
        now() - lastAt >= everyMs ||
        p.percent - lastPercent >= stepPercent ||
        (p.percent === 100 && lastPercent !== 100);
      if (due) emit(p);
      else pending = p;
    },
    flush() {
      if (pending) emit(pending);
    },
  };
}
