// Backoff per key and the overall token bucket, table-driven, with a hand-moved clock.

import { describe, expect, it } from 'vitest';
import {
  BucketRateLimiter,
  defaultRateLimiter,
  ExponentialFailureRateLimiter,
} from '../../src/reconcile/rate-limiter.ts';

describe('ExponentialFailureRateLimiter', () => {
  it.each([
    { failures: 1, delay: 5 },
    { failures: 2, delay: 10 },
    { failures: 3, delay: 20 },
    { failures: 10, delay: 5 * 2 ** 9 },
    { failures: 18, delay: 655_360 },
    { failures: 19, delay: 1_000_000 },
    { failures: 2000, delay: 1_000_000 },
  ])('failure $failures waits $delay ms', ({ failures, delay }) => {
    const rl = new ExponentialFailureRateLimiter();
    let last = 0;
    for (let i = 0; i < failures; i++) last = rl.when('k');
    expect(last).toBe(delay);
    expect(rl.retries('k')).toBe(failures);
  });

  it('keys back off independently and forget resets one key', () => {
    const rl = new ExponentialFailureRateLimiter({ baseMs: 1, maxMs: 100 });
    rl.when('a');
    rl.when('a');
    expect(rl.when('a')).toBe(4);
    expect(rl.when('b')).toBe(1);
    rl.forget('a');
    expect(rl.retries('a')).toBe(0);
    expect(rl.when('a')).toBe(1);
    expect(rl.retries('b')).toBe(1);
  });
});

describe('BucketRateLimiter', () => {
  it('allows a burst, then paces at qps, and refills over time', () => {
    let now = 0;
    const rl = new BucketRateLimiter({ qps: 10, burst: 3, clock: { now: () => now } });
    expect([rl.when('a'), rl.when('b'), rl.when('c')]).toEqual([0, 0, 0]);
    expect(rl.when('d')).toBe(100);
    expect(rl.when('e')).toBe(200);
    now += 1000; // 10 tokens' worth, but the bucket holds 3 and owed 2
    expect(rl.when('f')).toBe(0);
  });
});

describe('defaultRateLimiter', () => {
  it('takes the larger of the per-key backoff and the bucket delay', () => {
    const now = 0;
    const rl = defaultRateLimiter({ clock: { now: () => now } });
    // The bucket has 100 tokens: the first failures are paced by the per-key backoff alone.
    expect(rl.when('x')).toBe(5);
    expect(rl.when('x')).toBe(10);
    for (let i = 0; i < 98; i++) rl.when(`other-${i}`);
    // Bucket empty: a fresh key waits for a token (100 ms at 10 qps) rather than 5 ms.
    expect(rl.when('y')).toBe(100);
  });
});
