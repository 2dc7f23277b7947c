// The replication contract over the real transport: XenosNodes (TCP, cluster key, Noise, Yamux) on
// 127.0.0.1, the /xenos/state/1.0.0 stream protocol, stores replicating through it. A partition is
// real: the isolated host's connections are hung up; it comes back by dialling again.

import { peerIdFromString } from '@libp2p/peer-id';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.ts';
import { Libp2pTransport, STATE_PROTOCOL } from '../../src/store/replication/libp2p-transport.ts';
import { Replicator, type ReplicatorInit } from '../../src/store/replication/replicator.ts';
import { openStore } from '../../src/store/sqlite-store.ts';
import { type TestHost, TestNet } from '../p2p/cluster.ts';
import {
  type ClusterHarness,
  crdValidate,
  namespaced,
  type ReplicaHost,
  runReplicationContract,
  waitFor,
} from './replication-contract.ts';

const quiet = silentLogger.root;

/** Dials `from` to every node of `to` it is not connected to, and waits for the connections. */
async function connect(from: TestHost, to: TestHost[]): Promise<void> {
  const others = to.filter((t) => t !== from);
  await Promise.all(
    others
      .filter((t) => !from.node.connectedPeers().includes(t.node.peerId.toString()))
      .map((t) => from.node.dial(t.node.multiaddrs[0])),
  );
  await waitFor(
    () => others.every((t) => from.node.connectedPeers().includes(t.node.peerId.toString())),
    'connections up',
  );
}

async function disconnect(host: TestHost, all: TestHost[]): Promise<void> {
  await Promise.all(host.node.connectedPeers().map((p) => host.node.libp2p.hangUp(peerIdFromString(p))));
  const id = host.node.peerId.toString();
  await waitFor(
    () => host.node.connectedPeers().length === 0 && all.every((h) => !h.node.connectedPeers().includes(id)),
    'connections down',
  );
}

async function libp2pCluster(n: number, init: ReplicatorInit = {}): Promise<ClusterHarness> {
  const net = new TestNet();
  const hosts: ReplicaHost[] = [];
  const rogues: Libp2pTransport[] = [];
  try {
    const clusterKeyFile = await net.clusterKeyFile();
    const nodes = await Promise.all(Array.from({ length: n }, () => net.startHost({ clusterKeyFile })));
    for (const node of nodes) await connect(node, nodes);
    for (const [i, h] of nodes.entries()) {
      const name = `host-${String.fromCharCode(97 + i)}`;
      const store = openStore({ path: ':memory:', namespaced, writer: name });
      const transport = new Libp2pTransport({ node: h.node }, { timeoutMs: 5000 });
      const replicator = new Replicator({ store, transport, validate: crdValidate, log: quiet }, init);
      hosts.push({ name, store, replicator, id: h.node.peerId.toString() });
    }
    await Promise.all(hosts.map((h) => h.replicator.start()));
    const all = () => [...nodes];
    return {
      hosts,
      isolate: (i) => disconnect(nodes[i], all()),
      rejoin: (i) => connect(nodes[i], all()),
      down: async (i) => {
        await hosts[i].replicator.stop();
        await disconnect(nodes[i], all());
      },
      up: async (i) => {
        await hosts[i].replicator.start();
        await connect(nodes[i], all());
      },
      rogue: async () => {
        const node = await net.startHost({ clusterKeyFile });
        await connect(node, [...nodes, node]);
        const t = new Libp2pTransport({ node: node.node });
        t.onRequest(async () => {
          throw new Error('not a replica');
        });
        await t.start();
        rogues.push(t);
        return t;
      },
      cleanup: async () => {
        await Promise.all(hosts.map((h) => h.replicator.stop()));
        await Promise.all(rogues.map((t) => t.stop()));
        for (const h of hosts) h.store.close();
        await net.cleanup();
      },
    };
  } catch (err) {
    for (const h of hosts) h.store.close();
    await net.cleanup();
    throw err;
  }
}

runReplicationContract('libp2p transport', libp2pCluster);

describe('libp2p state transport', () => {
  it('refuses a message over the cap before reading it, and answers errors as errors', async () => {
    const net = new TestNet();
    try {
      const clusterKeyFile = await net.clusterKeyFile();
      const [a, b] = await Promise.all([
        net.startHost({ clusterKeyFile }),
        net.startHost({ clusterKeyFile }),
      ]);
      await connect(a, [a, b]);
      const small = new Libp2pTransport({ node: b.node }, { maxMessageBytes: 1024 });
      const served: unknown[] = [];
      small.onRequest(async (_from, m) => {
        served.push(m);
        if ((m as { boom?: boolean }).boom) throw new Error('boom');
        return { echo: m };
      });
      await small.start();
      const big = new Libp2pTransport({ node: a.node }, { maxMessageBytes: 1 << 20 });
      big.onRequest(async () => ({}));
      await big.start();
      try {
        const bId = b.node.peerId.toString();
        expect(await big.request(bId, { x: 1 })).toEqual({ echo: { x: 1 } });
        await expect(big.request(bId, { boom: true })).rejects.toThrow(/answered with an error: boom/);
        await expect(big.request(bId, { pad: 'x'.repeat(4096) })).rejects.toThrow();
        expect(served).toEqual([{ x: 1 }, { boom: true }]);
        expect(a.node.libp2p.getProtocols()).toContain(STATE_PROTOCOL);
      } finally {
        await big.stop();
        await small.stop();
      }
      expect(b.node.libp2p.getProtocols()).not.toContain(STATE_PROTOCOL);
    } finally {
      await net.cleanup();
    }
  });
});
