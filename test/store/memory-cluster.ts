// A replication cluster inside one process for tests: n hosts (`host-a`, `host-b`, …), each an in-memory
// SQLite store and a Replicator on one MemoryNetwork, which the test can cut (partition, isolate) and
// heal. Used by the in-memory run of the replication contract and by the fan-out tests.

import { silentLogger } from '../../src/log/logger.ts';
import { MemoryNetwork, type MemoryTransport } from '../../src/store/replication/memory-transport.ts';
import { Replicator, type ReplicatorInit } from '../../src/store/replication/replicator.ts';
import { openStore } from '../../src/store/sqlite-store.ts';
import { type ClusterHarness, crdValidate, namespaced, type ReplicaHost } from './replication-contract.ts';

const quiet = silentLogger.root;

export async function memoryCluster(
  n: number,
  init: ReplicatorInit = {},
  network = new MemoryNetwork(),
): Promise<ClusterHarness> {
  const hosts: ReplicaHost[] = [];
  const extra: MemoryTransport[] = [];
  for (let i = 0; i < n; i++) {
    const name = `host-${String.fromCharCode(97 + i)}`;
    const store = openStore({ path: ':memory:', namespaced, writer: name });
    const transport = network.endpoint(name);
    const replicator = new Replicator({ store, transport, validate: crdValidate, log: quiet }, init);
    hosts.push({ name, store, replicator, id: name });
  }
  await Promise.all(hosts.map((h) => h.replicator.start()));
  return {
    hosts,
    isolate: async (i) => network.isolate(hosts[i].id),
    rejoin: async () => network.heal(),
    down: (i) => hosts[i].replicator.stop(),
    up: (i) => hosts[i].replicator.start(),
    rogue: async () => {
      const t = network.endpoint(`rogue-${extra.length}`);
      t.onRequest(async () => {
        throw new Error('not a replica');
      });
      await t.start();
      extra.push(t);
      return t;
    },
    cleanup: async () => {
      await Promise.all(hosts.map((h) => h.replicator.stop()));
      await Promise.all(extra.map((t) => t.stop()));
      for (const h of hosts) h.store.close();
    },
  };
}
