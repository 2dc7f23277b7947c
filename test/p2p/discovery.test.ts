// Discovery across real nodes: a host that advertises a service type and publishes a fresh status is found by a
// node that runs nothing; providers whose status no longer lists the service, or whose status expired, are not.

import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Discovery, type DiscoveryInit } from '../../src/p2p/discovery.ts';
import { type InstanceEndpoints, serviceCid } from '../../src/p2p/host-status.ts';
import { loadOrCreatePeerKey } from '../../src/p2p/peer-key.ts';
import { RecordPublisher } from '../../src/p2p/record-publisher.ts';
import { type TestHost, TestNet, waitFor } from './cluster.ts';

const net = new TestNet();
const started: Discovery[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((d) => d.stop()));
  await net.cleanup();
});

async function discoveryOf(host: TestHost, statusTtl = 60_000, init: DiscoveryInit = {}): Promise<Discovery> {
  const { privateKey } = await loadOrCreatePeerKey(join(host.dataDir, 'p2p.key'));
  const records = new RecordPublisher({ node: host.node, privateKey }, { dataDir: host.dataDir });
  const d = new Discovery({ node: host.node, records }, { statusTtl, ...init });
  await d.start();
  started.push(d);
  return d;
}

const web = (name: string, endpoint: string): InstanceEndpoints => ({
  namespace: 'default',
  name,
  serviceType: 'web',
  endpoints: [endpoint],
  ready: true,
});

describe('discovery', () => {
  it('finds the endpoints of a host that advertises a service, from a node with no instances', async () => {
    const hosts = await net.startCluster(5);
    const [a, , c] = hosts;
    const da = await discoveryOf(a);
    await da.publishStatus([
      web('web-1', '10.0.0.1:8080'),
      { ...web('db-1', '10.0.0.1:5432'), serviceType: 'db' },
    ]);
    await da.advertise('web');
    const dc = await discoveryOf(c);
    const found = await dc.discover('web');
    expect(found).toHaveLength(1);
    expect(found[0].peerId).toBe(a.node.peerId.toString());
    expect(found[0].instances.map((i) => [i.name, i.endpoints])).toEqual([['web-1', ['10.0.0.1:8080']]]);
    expect(await dc.discover('db')).toEqual([]); // a listed instance, but not advertised
  });

  it('drops a provider whose status no longer lists the service, and one whose status expired', async () => {
    const hosts = await net.startCluster(5);
    const [a, b, c] = hosts;
    const da = await discoveryOf(a);
    const db = await discoveryOf(b, 1500);
    await da.publishStatus([web('web-a', '10.0.0.1:80')]);
    await db.publishStatus([web('web-b', '10.0.0.2:80')]);
    await da.advertise('web');
    await db.advertise('web');
    const dc = await discoveryOf(c);
    const ids = async () => (await dc.discover('web')).map((h) => h.peerId).sort();
    expect(await ids()).toEqual([a.node.peerId.toString(), b.node.peerId.toString()].sort());

    // A stops running its instance: its provider record lingers, its fresh status says so.
    await da.publishStatus([]);
    const providers: string[] = [];
    for await (const p of dc.findProviders('web')) providers.push(p.peerId);
    expect(providers).toContain(a.node.peerId.toString());
    expect(await ids()).toEqual([b.node.peerId.toString()]);

    // B dies: nobody can reach it and its signed status expires; discover stops returning it.
    await db.stop();
    await net.stopHost(b);
    await waitFor(
      async () => (await ids()).length === 0,
      8000,
      'B dropped from discover after its status expired',
    );
  });

  it('still finds a provider that advertised after an earlier discover, and itself when it provides the type', async () => {
    const hosts = await net.startCluster(5);
    const [a, b, c] = hosts;
    const da = await discoveryOf(a);
    await da.publishStatus([web('web-a', '10.0.0.1:80')]);
    await da.advertise('web');
    // C remembers the providers it verified for 4 s (refreshing them in the background after 1 s).
    const dc = await discoveryOf(c, 60_000, { providerCacheTtl: 4000 });
    const ids = async () => (await dc.discover('web')).map((h) => h.peerId).sort();
    const [idA, idB, idC] = [a, b, c].map((h) => h.node.peerId.toString());
    expect(await ids()).toEqual([idA]);

    const db = await discoveryOf(b);
    await db.publishStatus([web('web-b', '10.0.0.2:80')]);
    await db.advertise('web');
    // Well before C's remembered list expires, asking again finds B too.
    const since = Date.now();
    await waitFor(async () => (await ids()).includes(idB), 3500, 'B discovered by C');
    expect(Date.now() - since).toBeLessThan(3500);

    // C runs an instance of the type itself: it is among the providers at once.
    await dc.publishStatus([web('web-c', '10.0.0.3:80')]);
    await dc.advertise('web');
    expect(await ids()).toEqual([idA, idB, idC].sort());
    // ... and stops: gone at once, as A is when its status stops listing the type.
    await dc.publishStatus([]);
    await da.publishStatus([]);
    expect(await ids()).toEqual([idB]);
  });

  it('names service types like DNS names', async () => {
    await expect(serviceCid('Web Server')).rejects.toThrow(/lower-case letters/);
    expect((await serviceCid('web')).toString()).toBe((await serviceCid('web')).toString());
    expect((await serviceCid('web')).toString()).not.toBe((await serviceCid('db')).toString());
  });
});
