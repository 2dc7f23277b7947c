// The discover API's two paths. From the store (in-memory SQLite, scripted membership): a Ready instance
// with endpoints on a live host is answered with source "store"; one on a dead or NotReady host, one not
// Ready, of another type or in another namespace is not. Through the DHT (real libp2p nodes on loopback):
// a type the store holds no live endpoint of is asked of the DHT (source "dht", the provider's signed
// record), `from=dht` goes there even when the store could answer, and `from=dht` without an overlay is
// refused.

import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { discover, OverlayMissingError } from '../../src/cluster/discover-api.ts';
import { HostLiveness } from '../../src/cluster/liveness.ts';
import type { XObject } from '../../src/model/object.ts';
import { Discovery } from '../../src/p2p/discovery.ts';
import { loadOrCreatePeerKey } from '../../src/p2p/peer-key.ts';
import { RecordPublisher } from '../../src/p2p/record-publisher.ts';
import { openStore, type SqliteStore } from '../../src/store/sqlite-store.ts';
import { TestNet } from '../p2p/cluster.ts';
import { ScriptedMembership } from './scripted-membership.ts';

const peerOf = (name: string) => `12D3KooWTestPeer${name.padEnd(36, 'x')}`;
const condition = (type: string, status: string) => ({
  type,
  status,
  reason: 'Test',
  message: type,
  lastTransitionTime: new Date().toISOString(),
});

let store: SqliteStore;
let membership: ScriptedMembership;
let liveness: HostLiveness;
let now: number;
const net = new TestNet();
const discoveries: Discovery[] = [];

beforeEach(() => {
  store = openStore({ path: ':memory:', namespaced: (k) => k !== 'Host', writer: 'a' });
  now = 1_000_000;
  membership = new ScriptedMembership();
  liveness = new HostLiveness(
    { store, now: () => now, membership: () => membership },
    { self: 'a', timeoutMs: 5000 },
  );
  liveness.start();
  now += 60_000; // past warming up: only the membership decides who is live
});

afterEach(async () => {
  liveness.stop();
  store.close();
  await Promise.all(discoveries.splice(0).map((d) => d.stop()));
  await net.cleanup();
});

function addHost(name: string, opts: { member?: 'alive' | 'dead'; ready?: boolean } = {}): void {
  const created = store.create({
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'Host',
    metadata: { name },
    spec: {},
  });
  const status = {
    peerId: peerOf(name),
    conditions: [condition('Ready', opts.ready === false ? 'False' : 'True')],
  };
  store.update({ ...created, status } as XObject, { subresource: 'status' });
  membership.set(peerOf(name), opts.member ?? 'alive');
}

function addInstance(
  name: string,
  host: string,
  opts: { type?: string; namespace?: string; ready?: boolean; endpoints?: number } = {},
): void {
  const created = store.create({
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name, namespace: opts.namespace ?? 'default' },
    spec: { templateRef: { name: 'web' }, host },
  });
  const endpoints = Array.from({ length: opts.endpoints ?? 1 }, (_, i) => ({
    name: 'http',
    address: '127.0.0.1',
    port: 8000 + i,
  }));
  const status = {
    serviceType: opts.type ?? 'web.http',
    phase: 'Running',
    endpoints,
    conditions: [condition('Ready', opts.ready === false ? 'False' : 'True')],
  };
  store.update({ ...created, status } as XObject, { subresource: 'status' });
}

const local = () => ({ store, isLive: (h: string) => liveness.isLive(h) });

describe('discover from the replicated store', () => {
  it('answers with the Ready instances of the type on live hosts, and says it was the store', async () => {
    for (const h of ['a', 'b', 'c', 'd']) addHost(h);
    addInstance('web-1', 'b');
    addInstance('web-2', 'c', { ready: false });
    addInstance('web-3', 'd', { endpoints: 0 });
    addInstance('db-1', 'b', { type: 'db' });
    addInstance('web-4', 'b', { namespace: 'other' });
    const r = await discover({ local: local() }, 'default', 'web.http');
    expect(r.source).toBe('store');
    expect(r.items).toEqual([
      {
        namespace: 'default',
        instance: 'web-1',
        host: 'b',
        peerId: peerOf('b'),
        endpoints: ['127.0.0.1:8000'],
      },
    ]);
  });

  it('leaves out instances on a dead host or a NotReady host, though they still say Ready', async () => {
    addHost('a');
    addHost('b', { member: 'dead' });
    addHost('c', { ready: false });
    addHost('d');
    addInstance('web-1', 'b');
    addInstance('web-2', 'c');
    addInstance('web-3', 'd');
    const r = await discover({ local: local() }, 'default', 'web.http');
    expect(r.items.map((i) => i.instance)).toEqual(['web-3']);
    membership.set(peerOf('d'), 'dead');
    expect((await discover({ local: local() }, 'default', 'web.http')).items).toEqual([]);
  });

  it('refuses a bad type name on every path, and from=dht without an overlay', async () => {
    await expect(discover({ local: local() }, 'default', 'Web_Http')).rejects.toThrow(TypeError);
    await expect(discover({ local: local() }, 'default', 'web.http', { from: 'dht' })).rejects.toThrow(
      OverlayMissingError,
    );
  });
});

describe('discover through the DHT for what the store lacks', () => {
  it('asks the DHT when the store holds no live endpoint of the type, and only then', async () => {
    const [a, , c] = await net.startCluster(3);
    const { privateKey } = await loadOrCreatePeerKey(join(a.dataDir, 'p2p.key'));
    const records = new RecordPublisher({ node: a.node, privateKey }, { dataDir: a.dataDir });
    const da = new Discovery({ node: a.node, records });
    await da.start();
    discoveries.push(da);
    await da.publishStatus([
      {
        namespace: 'default',
        name: 'far-1',
        serviceType: 'web.http',
        endpoints: ['10.9.9.9:80'],
        ready: true,
      },
    ]);
    await da.advertise('web.http');
    const cRecords = new RecordPublisher({ node: c.node, privateKey }, { dataDir: c.dataDir });
    const dc = new Discovery({ node: c.node, records: cRecords });
    await dc.start();
    discoveries.push(dc);
    const overlay = { discovery: dc, node: c.node };

    // The store knows nothing of web.http: the DHT answers, with the provider's signed record.
    const fromDht = await discover({ local: local(), overlay }, 'default', 'web.http');
    expect(fromDht.source).toBe('dht');
    expect(fromDht.items).toEqual([
      {
        namespace: 'default',
        instance: 'far-1',
        peerId: a.node.peerId.toString(),
        endpoints: ['10.9.9.9:80'],
      },
    ]);

    // Now the store holds a live one: it answers, without the DHT's far-1; from=dht still asks the DHT.
    addHost('b');
    addInstance('web-1', 'b');
    const fromStore = await discover({ local: local(), overlay }, 'default', 'web.http');
    expect(fromStore.source).toBe('store');
    expect(fromStore.items.map((i) => i.instance)).toEqual(['web-1']);
    const forced = await discover({ local: local(), overlay }, 'default', 'web.http', { from: 'dht' });
    expect(forced.source).toBe('dht');
    expect(forced.items.map((i) => i.instance)).toEqual(['far-1']);
  });
});
