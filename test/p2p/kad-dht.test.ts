// src/p2p/kad-dht.ts against the real kad-dht, over real nodes on loopback: the parts it reaches beyond
// kad-dht's public interface (the routing table, the datastore's record layout, single direct requests)
// still do what discovery relies on. A kad-dht upgrade that moves them fails here first.

import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serviceCid } from '../../src/p2p/host-status.ts';
import { loadOrCreatePeerKey } from '../../src/p2p/peer-key.ts';
import { RecordPublisher } from '../../src/p2p/record-publisher.ts';
import { hostRecordKey, verifyRecord } from '../../src/p2p/records.ts';
import { TestNet, waitFor } from './cluster.ts';

const net = new TestNet();
afterEach(() => net.cleanup());

const enc = (s: string) => new TextEncoder().encode(s);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest();

/** Kademlia distance of a peer to a key, computed here independently of kad-dht.ts. */
function distance(key: Uint8Array, peerMultihash: Uint8Array): Buffer {
  const a = sha(key);
  const b = sha(peerMultihash);
  return Buffer.from(a.map((x, i) => x ^ b[i]));
}

describe('kad-dht internals (kad-dht.ts)', () => {
  it('knows the routing table, and lists the peers nearest a key, closest first', async () => {
    const hosts = await net.startCluster(5);
    const [a] = hosts;
    await waitFor(() => a.node.routingTableSize >= 4, 10_000, "a's routing table holds the 4 others");
    const key = enc('/xenos/host/some-key');
    const near = await a.node.nearestPeers(key, { count: 3 });
    expect(near).toHaveLength(3);
    const others = hosts.slice(1).map((h) => h.node.peerId);
    const expected = others
      .map((p) => ({ id: p.toString(), d: distance(key, p.toMultihash().bytes) }))
      .sort((x, y) => Buffer.compare(x.d, y.d))
      .slice(0, 3)
      .map((x) => x.id);
    expect(near.map((p) => p.toString())).toEqual(expected);
    const connected = await a.node.nearestPeers(key, { count: 10, connected: true });
    for (const p of connected) expect(a.node.connectedPeers()).toContain(p.toString());
  });

  it('asks one peer for providers and for a record directly, and reads the record a node holds itself', async () => {
    const hosts = await net.startCluster(4);
    const [a, b] = hosts;
    await waitFor(() => b.node.routingTableSize >= 3, 10_000, "b's routing table");
    const cid = await serviceCid('web');
    await a.node.provide(cid);
    const signal = AbortSignal.timeout(5000);
    const lists = await Promise.all(
      hosts.slice(1).map((h) => b.node.askProviders(h.node.peerId, cid.multihash.bytes, { signal })),
    );
    // a provided to the peers closest to the key: at least one of them lists it, none lists anyone else.
    const listed = lists.flat().map((p) => p.peerId);
    expect(listed).toContain(a.node.peerId.toString());
    expect(new Set(listed)).toEqual(new Set([a.node.peerId.toString()]));
    expect(await b.node.askProviders(a.node.peerId, enc('nothing here'), { signal })).toEqual([]);

    const { privateKey } = await loadOrCreatePeerKey(join(a.dataDir, 'p2p.key'));
    const records = new RecordPublisher({ node: a.node, privateKey }, { dataDir: a.dataDir });
    const key = hostRecordKey(a.node.peerId.toString());
    const { peers } = await records.publishRecord('host', key, { instances: [] });
    expect(peers).toBeGreaterThan(0); // PUT_VALUE answers counted as accepted
    const own = await a.node.getLocalRecord(enc(key));
    expect(own).toBeDefined();
    expect((await verifyRecord(key, own!)).peerId).toBe(a.node.peerId.toString());
    const holders = await Promise.all(hosts.map((h) => h.node.getLocalRecord(enc(key))));
    const holder = hosts[holders.findIndex((v, i) => i > 0 && v != null)];
    const copy = await a.node.askValue(holder.node.peerId, enc(key), { signal });
    expect(copy).toEqual(own);
    expect(await a.node.askValue(holder.node.peerId, enc('/xenos/host/none'), { signal })).toBeUndefined();
  });
});
