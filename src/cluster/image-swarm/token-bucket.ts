// A token bucket for the per-host image transfer caps (`--image-upload-rate`, `--image-download-rate`):
// bytes are taken before they are sent (or after they are read, which holds the sender back through the
// stream's flow control). Tokens refill at `rate` bytes a second up to `burst`; a take larger than what is
// there runs the bucket into debt and waits until the debt is paid, so concurrent takers share the rate and
// the long-run rate never exceeds it, whatever the frame sizes.

export interface TokenBucketInit {
  /** Bytes per second. */
  rate: number;
  /** Most bytes that may go at once after an idle spell. Default: a quarter of a second's worth, at
   *  least 64 KiB. */
  burst?: number;
}

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #at: number;

  constructor(init: TokenBucketInit, clock: Clock = realClock) {
    if (!(init.rate > 0) || !Number.isFinite(init.rate))
      throw new RangeError(`rate must be a positive number of bytes a second, got ${init.rate}`);
    this.rate = init.rate;
    this.burst = init.burst ?? Math.max(64 * 1024, init.rate / 4);
    this.#clock = clock;
    this.#tokens = this.burst;
    this.#at = clock.now();
  }

  /** Takes `bytes` and resolves when they may go (at once while the bucket holds them). */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.#refill();
    this.#tokens -= bytes;
    if (this.#tokens >= 0) return;
    await this.#clock.sleep((-this.#tokens / this.rate) * 1000, signal);
  }

  #refill(): void {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
  }
}

/** `take` on a bucket when one is set: transfers without a cap pass straight through. */
export async function throttle(bucket: TokenBucket | undefined, bytes: number, signal?: AbortSignal) {
  if (bucket) await bucket.take(bytes, signal);
}
