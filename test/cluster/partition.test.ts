// A partition and its healing with three real xenosd processes: host C is cut off from A and B (every
// p2p connection refused and closed by the partition hook that the test entry point xenosd-with-faults.ts
// wires into each real daemon). Both sides keep accepting writes;
// each side marks the other NotReady; a write made on each side to the same object conflicts. After the
// partition heals, every host holds every acknowledged write, the conflict resolves the same way on all
// three (the later write wins), and every host is Ready again everywhere.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterHost, parked, SI, TestCluster, waitFor } from './harness.ts';

describe('partition and heal', () => {
  const cluster = new TestCluster({ hostTimeout: '2s' });
  let a: ClusterHost;
  let b: ClusterHost;
  let c: ClusterHost;

  beforeAll(async () => {
    [a, b, c] = await cluster.startHosts(['a', 'b', 'c']);
  }, 60_000);

  afterAll(() => cluster.cleanup(), 60_000);

  async function create(h: ClusterHost, name: string): Promise<void> {
    const res = await h.api(SI, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(parked(name)),
    });
    expect(res.status, `create ${name} on ${h.name}`).toBe(201);
  }

  async function label(h: ClusterHost, name: string, side: string): Promise<void> {
    const res = await h.api(`${SI}/${name}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/merge-patch+json' },
      body: JSON.stringify({ metadata: { labels: { side } } }),
    });
    expect(res.status, `label ${name} on ${h.name}`).toBe(200);
  }

  it('both sides take writes; after healing all replicas converge and nothing acknowledged is lost', async () => {
    await create(a, 'shared');
    await waitFor(async () => (await c.api(`${SI}/shared`)).ok, 'shared replicated to c');

    await Promise.all([cluster.deny(c, [a, b]), cluster.deny(a, [c]), cluster.deny(b, [c])]);
    await waitFor(async () => (await cluster.hostReady(a, 'c')) === 'False', 'c NotReady on a');
    await waitFor(
      async () =>
        (await cluster.hostReady(c, 'a')) === 'False' && (await cluster.hostReady(c, 'b')) === 'False',
      'a and b NotReady on c',
    );

    for (const n of ['pa-1', 'pa-2', 'pa-3']) await create(a, n);
    await create(b, 'pb-1');
    for (const n of ['pc-1', 'pc-2']) await create(c, n);
    await label(a, 'shared', 'ab');
    await label(c, 'shared', 'c'); // later: wins everywhere
    // The sides really are apart: c has not heard of a's writes.
    expect((await c.api(`${SI}/pa-1`)).status).toBe(404);
    expect((await a.api(`${SI}/pc-1`)).status).toBe(404);

    await Promise.all([a, b, c].map((h) => cluster.deny(h, [])));

    const want = ['pa-1', 'pa-2', 'pa-3', 'pb-1', 'pc-1', 'pc-2', 'shared'];
    for (const h of [a, b, c]) {
      await waitFor(async () => {
        const list = await cluster.json(h, SI);
        const names = list.items.map((i: any) => i.metadata.name).sort();
        const shared = list.items.find((i: any) => i.metadata.name === 'shared');
        return JSON.stringify(names) === JSON.stringify(want) && shared?.metadata.labels?.side === 'c';
      }, `every write, and shared labelled side=c, on ${h.name}`);
    }
    const specs = await Promise.all(
      [a, b, c].map(async (h) => {
        const list = await cluster.json(h, SI);
        return list.items.map((i: any) => [i.metadata.name, i.metadata.uid, i.metadata.labels, i.spec]);
      }),
    );
    expect(specs[1]).toEqual(specs[0]);
    expect(specs[2]).toEqual(specs[0]);

    for (const h of [a, b, c]) {
      for (const n of ['a', 'b', 'c']) {
        await waitFor(async () => (await cluster.hostReady(h, n)) === 'True', `host ${n} Ready on ${h.name}`);
      }
    }
  }, 60_000);
});
