// How many times a write travels, over the in-memory transport: each write is pushed once to each peer
// by the host that made it and passed on by nobody, so the cluster carries N−1 rows per write even
// where hosts are not all connected (flooding through receivers sent a host the same row once per
// neighbour); a host the push cannot reach, or that was partitioned away, gets the rows by anti-entropy.

import { afterEach, describe, expect, it } from 'vitest';
import { MemoryNetwork } from '../../src/store/replication/memory-transport.ts';
import { memoryCluster } from './memory-cluster.ts';
import {
  type ClusterHarness,
  dump,
  instance,
  key,
  type ReplicaHost,
  TEST_INIT,
  waitFor,
} from './replication-contract.ts';

const total = (hosts: ReplicaHost[], stat: 'pushedRows' | 'receivedRows' | 'syncedRows' | 'localWrites') =>
  hosts.reduce((n, h) => n + h.replicator.stats[stat], 0);

describe('replication fan-out', () => {
  let cluster: ClusterHarness | undefined;
  afterEach(async () => {
    await cluster?.cleanup();
    cluster = undefined;
  });

  it('sends each write about once to each host where not every host is connected to every other', async () => {
    const n = 8;
    const network = new MemoryNetwork();
    // Host i and host i+4 cannot talk: every host misses one peer, the graph stays connected.
    for (let i = 0; i < n / 2; i++) {
      network.partition([`host-${String.fromCharCode(97 + i)}`], [`host-${String.fromCharCode(101 + i)}`]);
    }
    cluster = await memoryCluster(n, { ...TEST_INIT, syncIntervalMs: 300 }, network);
    const hosts = cluster.hosts;
    await waitFor(
      () => hosts.every((h) => h.replicator.idle && h.replicator.stats.syncs > 0),
      'start-up syncs',
    );
    const before = { pushed: total(hosts, 'pushedRows'), received: total(hosts, 'receivedRows') };
    const perHost = hosts.map((h) => h.replicator.stats.receivedRows);
    const writes = 24;
    for (let w = 0; w < writes; w++) {
      hosts[w % n].store.create(instance(`w${w}`));
      // One write at a time, each on every host before the next: rows per write are not shared.
      await waitFor(() => hosts.every((h) => !!h.store.get(key(`w${w}`))), `w${w} on every host`);
    }
    await waitFor(() => hosts.every((h) => h.replicator.idle), 'every push and sync done');
    const first = dump(hosts[0].store);
    expect(hosts.every((h) => dump(h.store) === first)).toBe(true);
    // Pushed: each write to the writer's n−2 reachable peers, exactly; nothing forwarded.
    expect(total(hosts, 'pushedRows') - before.pushed).toBe(writes * (n - 2));
    // Received (pushes and anti-entropy): about once per host per write. The unreachable host's copy
    // comes by anti-entropy, and a sync may carry a row a push is carrying at the same moment.
    const received = total(hosts, 'receivedRows') - before.received;
    expect(received / writes).toBeGreaterThanOrEqual(n - 1);
    expect(received / writes).toBeLessThanOrEqual(1.5 * (n - 1));
    // Per host: about once too. Flooding sent the host each writer cannot reach one copy per
    // neighbour (6 here). What is left above 1 is anti-entropy meeting a row on its way: syncs here run
    // every 300 ms (xenosd: 5 s), several at a time across the cluster.
    for (const [i, h] of hosts.entries()) {
      const got = h.replicator.stats.receivedRows - perHost[i];
      // This host wrote writes/n of them itself.
      expect(got / (writes - writes / n), h.name).toBeLessThanOrEqual(2);
    }
  });

  it('a host partitioned away catches up by anti-entropy once healed, nothing pushed again', async () => {
    const network = new MemoryNetwork();
    cluster = await memoryCluster(4, { ...TEST_INIT, syncIntervalMs: 200 }, network);
    const hosts = cluster.hosts;
    const [a, b, c, d] = hosts;
    await waitFor(
      () => hosts.every((h) => h.replicator.idle && h.replicator.stats.syncs > 0),
      'start-up syncs',
    );
    network.isolate(d.id);
    for (let w = 0; w < 10; w++) [a, b, c][w % 3].store.create(instance(`missed-${w}`));
    d.store.create(instance('from-d'));
    await waitFor(
      () => [a, b, c].every((h) => [...Array(10).keys()].every((w) => !!h.store.get(key(`missed-${w}`)))),
      'the writes on A, B and C',
    );
    await waitFor(() => hosts.every((h) => h.replicator.idle), 'pushes settled');
    expect(d.store.get(key('missed-0'))).toBeUndefined();
    const pushed = total(hosts, 'pushedRows');
    const synced = total(hosts, 'syncedRows');
    network.heal();
    await waitFor(() => dump(a.store) === dump(d.store), 'D caught up', 15_000);
    await waitFor(() => [b, c].every((h) => dump(h.store) === dump(d.store)), 'every host agrees', 15_000);
    // The writes were pushed once, while D was away; what D missed (and what it wrote meanwhile) came
    // by anti-entropy: 10 rows to D, from-d to each of the 3 others.
    expect(total(hosts, 'pushedRows')).toBe(pushed);
    expect(total(hosts, 'syncedRows') - synced).toBeGreaterThanOrEqual(13);
  });
});
