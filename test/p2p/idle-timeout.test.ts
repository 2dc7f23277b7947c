// The idle timeout of a transfer's waits: a wait that lasts its time aborts the signal with a TimeoutError;
// time between waits does not count; the parent signal's abort passes through.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IdleTimeout } from '../../src/p2p/idle-timeout.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('IdleTimeout', () => {
  it('aborts with a TimeoutError when one wait lasts its time', () => {
    const idle = new IdleTimeout(1000);
    idle.arm();
    vi.advanceTimersByTime(999);
    expect(idle.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(idle.signal.aborted).toBe(true);
    expect((idle.signal.reason as Error).name).toBe('TimeoutError');
  });

  it('counts each wait on its own, and nothing between waits', () => {
    const idle = new IdleTimeout(1000);
    for (let i = 0; i < 5; i++) {
      idle.arm();
      vi.advanceTimersByTime(900);
      idle.pause();
      vi.advanceTimersByTime(5000); // e.g. waiting for the rate cap
    }
    expect(idle.signal.aborted).toBe(false);
    idle.arm();
    idle.arm(); // armed again while pending: from now
    vi.advanceTimersByTime(999);
    expect(idle.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(idle.signal.aborted).toBe(true);
  });

  it('aborts when its parent does', () => {
    const parent = new AbortController();
    const idle = new IdleTimeout(1000, parent.signal);
    parent.abort(new Error('stopping'));
    expect(idle.signal.aborted).toBe(true);
    expect((idle.signal.reason as Error).message).toBe('stopping');
  });
});
