// How long a key waits before it is retried, the way client-go's workqueue decides it: per key, an
// exponential backoff (5 ms doubling up to 1000 s, about 16 min) that `forget` resets after a success;
// overall, a token bucket (10 per second, bursts of 100) so a storm of failures cannot spin the host.
// The default limiter is the larger of the two delays.

export interface RateLimiter {
  /** Delay in ms before `key` may be processed again; counts as one more failure of `key`. */
  when(key: string): number;
  /** `key` succeeded: clear its failure count. */
  forget(key: string): void;
  /** How many times `key` has failed since the last `forget`. */
  retries(key: string): number;
}

export interface Clock {
  now(): number;
}

const systemClock: Clock = { now: () => Date.now() };

export const DEFAULT_BASE_DELAY_MS = 5;
export const DEFAULT_MAX_DELAY_MS = 1_000_000;
export const DEFAULT_QPS = 10;
export const DEFAULT_BURST = 100;

/** base · 2^failures, capped at max. */
export class ExponentialFailureRateLimiter implements RateLimiter {
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly failures = new Map<string, number>();

  constructor(init: { baseMs?: number; maxMs?: number } = {}) {
    this.baseMs = init.baseMs ?? DEFAULT_BASE_DELAY_MS;
    this.maxMs = init.maxMs ?? DEFAULT_MAX_DELAY_MS;
  }

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity long before n is large enough to matter; the cap handles it.
    return Math.min(this.baseMs * 2 ** n, this.maxMs);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** A token bucket shared by all keys: `qps` tokens a second, at most `burst` saved up. */
export class BucketRateLimiter implements RateLimiter {
  private readonly qps: number;
  private readonly burst: number;
  private readonly clock: Clock;
  private tokens: number;
  private last: number;

  constructor(init: { qps?: number; burst?: number; clock?: Clock } = {}) {
    this.qps = init.qps ?? DEFAULT_QPS;
    this.burst = init.burst ?? DEFAULT_BURST;
    this.clock = init.clock ?? systemClock;
    this.tokens = this.burst;
    this.last = this.clock.now();
  }

  when(_key: string): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }

  forget(_key: string): void {}

  retries(_key: string): number {
    return 0;
  }
}

/** The longest delay any of the limiters asks for. */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    let max = 0;
    for (const l of this.limiters) max = Math.max(max, l.when(key));
    return max;
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  retries(key: string): number {
    let max = 0;
    for (const l of this.limiters) max = Math.max(max, l.retries(key));
    return max;
  }
}

/** client-go's DefaultControllerRateLimiter. */
export function defaultRateLimiter(init: { clock?: Clock } = {}): RateLimiter {
  return new MaxOfRateLimiter([
    new ExponentialFailureRateLimiter(),
    new BucketRateLimiter({ clock: init.clock }),
  ]);
}
