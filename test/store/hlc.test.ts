// The hybrid logical clock: strictly increasing under a wall clock that stands still or steps
// back, moves past received timestamps, refuses a peer far in the future, and orders totally.

import { describe, expect, it } from 'vitest';
import {
  ClockDriftError,
  formatHlc,
  HlcFormatError,
  HybridLogicalClock,
  hlcCompare,
  hlcLowerBound,
  MAX_REMOTE_COUNTER,
  parseHlc,
} from '../../src/store/hlc.ts';

/** A wall clock the test sets by hand. */
function manualClock(start: number): { now: () => number; set: (ms: number) => void } {
  let t = start;
  return { now: () => t, set: (ms) => (t = ms) };
}

describe('HybridLogicalClock', () => {
  it('follows the wall clock when it moves forward', () => {
    const wall = manualClock(1_000);
    const clock = new HybridLogicalClock({ writer: 'a', wallClock: wall.now });
    expect(parseHlc(clock.now())).toEqual({ physical: 1_000, logical: 0, writer: 'a' });
    wall.set(2_000);
    expect(parseHlc(clock.now())).toEqual({ physical: 2_000, logical: 0, writer: 'a' });
  });

  it('stays strictly increasing when the wall clock stands still or steps back', () => {
    const wall = manualClock(5_000);
    const clock = new HybridLogicalClock({ writer: 'a', wallClock: wall.now });
    const seen = [clock.now(), clock.now()];
    wall.set(1_000); // NTP stepped the clock back four seconds
    for (let i = 0; i < 100; i++) seen.push(clock.now());
    wall.set(5_000);
    seen.push(clock.now());
    wall.set(6_000);
    seen.push(clock.now());
    for (let i = 1; i < seen.length; i++) expect(hlcCompare(seen[i - 1], seen[i])).toBeLessThan(0);
    expect(parseHlc(seen[seen.length - 1])).toEqual({ physical: 6_000, logical: 0, writer: 'a' });
    // Plain string order agrees with hlcCompare (SQL compares the column as text).
    expect([...seen].sort()).toEqual(seen);
  });

  it('resumes after a persisted timestamp even if the wall clock is now earlier', () => {
    const wall = manualClock(100);
    const last = formatHlc({ physical: 9_000, logical: 3, writer: 'a' });
    const clock = new HybridLogicalClock({ writer: 'a', wallClock: wall.now, last });
    expect(hlcCompare(clock.now(), last)).toBeGreaterThan(0);
  });

  it('moves past a received timestamp, and refuses one too far ahead', () => {
    const wall = manualClock(10_000);
    const clock = new HybridLogicalClock({ writer: 'a', wallClock: wall.now, maxDriftMs: 1_000 });
    const remote = formatHlc({ physical: 10_500, logical: 7, writer: 'b' });
    const merged = clock.receive(remote);
    expect(parseHlc(merged)).toEqual({ physical: 10_500, logical: 8, writer: 'a' });
    expect(hlcCompare(clock.now(), merged)).toBeGreaterThan(0);
    expect(() => clock.receive(formatHlc({ physical: 20_000, logical: 0, writer: 'b' }))).toThrow(
      ClockDriftError,
    );
  });

  it('refuses a far-future time or an impossible counter without moving, and keeps counting after', () => {
    const wall = manualClock(10_000);
    const clock = new HybridLogicalClock({ writer: 'a', wallClock: wall.now, maxDriftMs: 1_000 });
    const before = clock.now();
    const hostile = [
      formatHlc({ physical: 10_000 + 1_001, logical: 0, writer: 'm' }), // beyond the skew
      formatHlc({ physical: 10_500, logical: MAX_REMOTE_COUNTER + 1, writer: 'm' }), // counter near the top
      formatHlc({ physical: 10_500, logical: 9_999_999_999, writer: 'm' }),
    ];
    for (const h of hostile) {
      expect(() => clock.check(h)).toThrow(ClockDriftError);
      expect(() => clock.receive(h)).toThrow(ClockDriftError);
    }
    expect(clock.peek()).toBe(before);
    // The next writes follow the wall clock as if nothing had come.
    expect(parseHlc(clock.now())).toEqual({ physical: 10_000, logical: 1, writer: 'a' });
    wall.set(10_001);
    expect(parseHlc(clock.now())).toEqual({ physical: 10_001, logical: 0, writer: 'a' });
    // The largest counter a peer may send still leaves the local clock its whole range.
    clock.receive(formatHlc({ physical: 10_900, logical: MAX_REMOTE_COUNTER, writer: 'b' }));
    for (let i = 0; i < 1000; i++) clock.now();
    expect(parseHlc(clock.now()).logical).toBe(MAX_REMOTE_COUNTER + 1002);
  });

  it('carries a full counter into the milliseconds instead of refusing to issue', () => {
    const wall = manualClock(10_000);
    const last = formatHlc({ physical: 10_000, logical: 9_999_999_999, writer: 'a' });
    const clock = new HybridLogicalClock({ writer: 'a', wallClock: wall.now, last });
    const next = clock.now();
    expect(parseHlc(next)).toEqual({ physical: 10_001, logical: 0, writer: 'a' });
    expect(hlcCompare(next, last)).toBeGreaterThan(0);
  });

  it('orders by time, then counter, then writer, and equal only when identical', () => {
    const t = (physical: number, logical: number, writer: string) => formatHlc({ physical, logical, writer });
    expect(hlcCompare(t(1, 9, 'z'), t(2, 0, 'a'))).toBeLessThan(0);
    expect(hlcCompare(t(2, 1, 'a'), t(2, 0, 'z'))).toBeGreaterThan(0);
    expect(hlcCompare(t(2, 1, 'a'), t(2, 1, 'b'))).toBeLessThan(0);
    expect(hlcCompare(t(2, 1, 'b'), t(2, 1, 'b'))).toBe(0);
    expect(t(3, 0, 'a') > hlcLowerBound(3)).toBe(true);
    expect(t(2, 99, 'z') < hlcLowerBound(3)).toBe(true);
  });

  it('rejects malformed timestamps and empty writers', () => {
    expect(() => parseHlc('12.3.a')).toThrow(HlcFormatError);
    expect(() => new HybridLogicalClock({ writer: '' })).toThrow(HlcFormatError);
  });
});
