// The work queue's promises: keys only, duplicates merged, a key never handed to two workers at once,
// a key re-added while processed comes back after `done`, delayed adds keep the earliest time.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { ExponentialFailureRateLimiter } from '../../src/reconcile/rate-limiter.ts';
import { WorkQueue } from '../../src/reconcile/work-queue.ts';

const queues: WorkQueue[] = [];
function queue(): WorkQueue {
  const q = new WorkQueue({ rateLimiter: new ExponentialFailureRateLimiter({ baseMs: 5, maxMs: 1000 }) });
  queues.push(q);
  return q;
}
afterEach(() => {
  for (const q of queues.splice(0)) q.shutDown();
});

describe('WorkQueue', () => {
  it.each([
    { name: 'duplicates merge', adds: ['a', 'b', 'a', 'a', 'c', 'b'], order: ['a', 'b', 'c'] },
    { name: 'FIFO', adds: ['c', 'b', 'a'], order: ['c', 'b', 'a'] },
    { name: 'empty', adds: [], order: [] },
  ])('$name', async ({ adds, order }) => {
    const q = queue();
    for (const k of adds) q.add(k);
    expect(q.length).toBe(order.length);
    const got: string[] = [];
    for (let i = 0; i < order.length; i++) got.push((await q.get())!);
    expect(got).toEqual(order);
  });

  it('a key re-added while processing is not handed out twice, and comes back after done', async () => {
    const q = queue();
    q.add('a');
    const first = await q.get();
    expect(first).toBe('a');
    q.add('a');
    q.add('a');
    expect(q.length).toBe(0);
    expect(q.isProcessing('a')).toBe(true);
    q.done('a');
    expect(q.length).toBe(1);
    expect(await q.get()).toBe('a');
    q.done('a');
    expect(q.length).toBe(0);
  });

  it('a waiting get receives the next added key', async () => {
    const q = queue();
    const pending = q.get();
    q.add('x');
    expect(await pending).toBe('x');
    expect(q.isProcessing('x')).toBe(true);
  });

  it('addAfter delivers later and keeps only the earliest pending delay', async () => {
    vi.useFakeTimers();
    try {
      const q = queue();
      q.addAfter('k', 5000);
      q.addAfter('k', 30);
      q.addAfter('k', 4000);
      expect(q.delayed).toBe(1);
      let got: string | undefined;
      void q.get().then((k) => {
        got = k;
      });
      await vi.advanceTimersByTimeAsync(29);
      expect(got).toBeUndefined();
      await vi.advanceTimersByTimeAsync(1);
      expect(got).toBe('k');
      expect(q.delayed).toBe(0);
      // The later delays were dropped: nothing else arrives.
      await vi.advanceTimersByTimeAsync(10_000);
      expect(q.length).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('addRateLimited backs off exponentially per key until forget', () => {
    const q = queue();
    expect([q.addRateLimited('k'), q.addRateLimited('k'), q.addRateLimited('k')]).toEqual([5, 10, 20]);
    expect(q.retries('k')).toBe(3);
    q.forget('k');
    expect(q.retries('k')).toBe(0);
    expect(q.addRateLimited('k')).toBe(5);
  });

  it('shutDown releases waiting getters and drops delayed keys', async () => {
    const q = queue();
    const pending = q.get();
    q.addAfter('late', 10_000);
    q.shutDown();
    expect(await pending).toBeUndefined();
    expect(q.delayed).toBe(0);
    q.add('after');
    expect(await q.get()).toBeUndefined();
  });
});
