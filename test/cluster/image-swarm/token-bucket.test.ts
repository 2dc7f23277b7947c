// The transfer caps' token bucket (src/cluster/image-swarm/token-bucket.ts), on a clock the test moves: a
// burst goes at once, beyond it takers wait in proportion to the debt, concurrent takers share the rate,
// and over any run the bytes let through never exceed burst + rate × time.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Clock, TokenBucket } from '../../../src/cluster/image-swarm/token-bucket.ts';

/** A clock whose sleeps advance it (nothing really waits). */
function fakeClock(): Clock & { t: number; slept: number[] } {
  const c = {
    t: 0,
    slept: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.slept.push(ms);
      c.t += ms;
    },
  };
  return c;
}

describe('TokenBucket', () => {
  it('lets a burst through at once, then paces at the rate', async () => {
    const clock = fakeClock();
    const b = new TokenBucket({ rate: 1000, burst: 500 }, clock);
    await b.take(500);
    expect(clock.t).toBe(0);
    await b.take(1000);
    expect(clock.t).toBe(1000); // 1000 bytes of debt at 1000 B/s
    await b.take(250);
    expect(clock.t).toBe(1250);
  });

  it('refills while idle, up to the burst only', async () => {
    const clock = fakeClock();
    const b = new TokenBucket({ rate: 100, burst: 200 }, clock);
    await b.take(200);
    clock.t += 60_000; // a long idle spell refills 200, not 6000
    await b.take(200);
    expect(clock.t).toBe(60_000);
    await b.take(100);
    expect(clock.t).toBe(61_000);
  });

  it('refuses a rate that is not a positive number', () => {
    expect(() => new TokenBucket({ rate: 0 })).toThrow(/positive/);
    expect(() => new TokenBucket({ rate: Number.NaN })).toThrow(/positive/);
  });

  it('never lets more than burst + rate × elapsed through (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.array(
          fc.record({ bytes: fc.integer({ min: 1, max: 300_000 }), idle: fc.integer({ min: 0, max: 2000 }) }),
          {
            minLength: 1,
            maxLength: 40,
          },
        ),
        async (rate, takes) => {
          const clock = fakeClock();
          const b = new TokenBucket({ rate }, clock);
          let sent = 0;
          for (const { bytes, idle } of takes) {
            clock.t += idle;
            await b.take(bytes);
            sent += bytes;
            // What has been let through by now is covered by the burst plus what the rate earned.
            expect(sent).toBeLessThanOrEqual(b.burst + (rate * clock.t) / 1000 + 1e-6);
          }
        },
      ),
    );
  });

  it('shares the rate between concurrent takers on a real clock', async () => {
    const b = new TokenBucket({ rate: 2_000_000, burst: 64 * 1024 });
    const start = performance.now();
    await Promise.all(Array.from({ length: 4 }, () => b.take(250_000)));
    // 1 MB at 2 MB/s minus the 64 KiB burst: about 0.47 s for all four together.
    expect(performance.now() - start).toBeGreaterThanOrEqual(400);
  });
});
