// Anti-entropy's pace (src/store/replication/sync-pace.ts): rounds that find nothing slow it down to a
// bound, anything else brings it straight back; and in a real (in-memory) cluster an idle replicator runs
// few rounds while a write puts it back on the fast period at once.

import { afterEach, describe, expect, it } from 'vitest';
import { SyncPace } from '../../src/store/replication/sync-pace.ts';
import { memoryCluster } from './memory-cluster.ts';
import { type ClusterHarness, instance, key, TEST_INIT } from './replication-contract.ts';

describe('SyncPace', () => {
  it('doubles the wait after each quiet round up to the bound, and resets after any other', () => {
    const pace = new SyncPace(5000, 60_000);
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      pace.roundEnded(true);
      waits.push(pace.wait);
    }
    expect(waits).toEqual([10_000, 20_000, 40_000, 60_000, 60_000, 60_000]);
    pace.roundEnded(false);
    expect(pace.wait).toBe(5000);
  });

  it('wakes to the base period, saying whether the planned wait was longer', () => {
    const pace = new SyncPace(100, 1000);
    expect(pace.wake()).toBe(false);
    pace.roundEnded(true);
    expect(pace.wake()).toBe(true);
    expect(pace.wait).toBe(100);
  });

  it('never waits less than the base, whatever bound it is given', () => {
    const pace = new SyncPace(500, 100);
    pace.roundEnded(true);
    expect(pace.wait).toBe(500);
  });
});

describe('a replicator idle, then written to', () => {
  let cluster: ClusterHarness | undefined;
  afterEach(async () => {
    await cluster?.cleanup();
    cluster = undefined;
  });

  it('runs few rounds while nothing changes, and a round soon after a write', async () => {
    cluster = await memoryCluster(2, { ...TEST_INIT, syncIntervalMs: 50, maxSyncIntervalMs: 1600 });
    const [a, b] = cluster.hosts;
    a.store.create(instance('web'));
    await expect.poll(() => b.store.get(key('web'))?.metadata.name).toBe('web');
    // Quiet rounds after 50, 100, 200, 400, 800, 1600 ms: about 6 in 3 s, where a fixed period ran 60.
    await new Promise((r) => setTimeout(r, 600)); // past the rounds that carried the write
    const idleFrom = a.replicator.stats.syncs;
    await new Promise((r) => setTimeout(r, 3000));
    expect(a.replicator.stats.syncs - idleFrom).toBeLessThanOrEqual(6);
    const before = a.replicator.stats.syncs;
    a.store.create(instance('db'));
    // A round with the peer within a few base periods (not the 1.6 s the idle pace had reached).
    await expect.poll(() => a.replicator.stats.syncs > before, { timeout: 400, interval: 10 }).toBe(true);
  });
});
