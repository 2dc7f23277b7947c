// Token buckets per key (a principal's name), as Kubernetes' EventRateLimit admission plugin keeps per
// user: each key may spend `burst` at once and gets `perSecond` back, up to `burst`. Keys not seen for a
// while fall out (least recently used first) past `maxKeys`, so the table cannot grow without bound; a
// key that falls out comes back with a full bucket, which is what it would have by then anyway.
// (src/reconcile's BucketRateLimiter is another thing: one shared bucket that delays retries, never refuses.)

export interface TokenBucketsInit {
  burst: number;
  perSecond: number;
  /** Buckets kept at most. Default 10,000. */
  maxKeys?: number;
  /** Clock in ms (tests). Default performance.now. */
  now?: () => number;
}

export type TakeResult = { ok: true } | { ok: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  readonly #burst: number;
  readonly #perMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  /** In least-recently-used order (a Map keeps insertion order; a use re-inserts). */
  readonly #buckets = new Map<string, Bucket>();

  constructor(init: TokenBucketsInit) {
    if (!(init.burst >= 1) || !(init.perSecond > 0))
      throw new RangeError('a token bucket needs burst >= 1 and perSecond > 0');
    this.#burst = init.burst;
    this.#perMs = init.perSecond / 1000;
    this.#maxKeys = init.maxKeys ?? 10_000;
    this.#now = init.now ?? (() => performance.now());
  }

  /** The bucket size and refill rate, for messages. */
  get limits(): { burst: number; perSecond: number } {
    return { burst: this.#burst, perSecond: this.#perMs * 1000 };
  }

  /** Spends one token of `key`'s bucket, or says how long until one is back. */
  take(key: string): TakeResult {
    const now = this.#now();
    const old = this.#buckets.get(key);
    const tokens = old ? Math.min(this.#burst, old.tokens + (now - old.at) * this.#perMs) : this.#burst;
    this.#buckets.delete(key);
    if (tokens < 1) {
      this.#buckets.set(key, { tokens, at: now });
      return { ok: false, retryAfterSeconds: (1 - tokens) / this.#perMs / 1000 };
    }
    this.#buckets.set(key, { tokens: tokens - 1, at: now });
    if (this.#buckets.size > this.#maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
    return { ok: true };
  }
}
