// XenosNode lifecycle: persistent identity, p2p.addrs, idempotent start/stop, bootstrap with retry, events,
// direct stream protocols, and the --p2p address parser.

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ListenAddressError } from '../../src/p2p/errors.ts';
import { listenMultiaddr } from '../../src/p2p/listen-address.ts';
import { TestNet, waitFor } from './cluster.ts';

const net = new TestNet();
afterEach(() => net.cleanup());

describe('XenosNode', () => {
  it('keeps its peer ID across restarts (DATA_DIR/p2p.key, 0600) and writes its addresses to p2p.addrs', async () => {
    const keyFile = await net.clusterKeyFile();
    const first = await net.startHost({ clusterKeyFile: keyFile });
    const id = first.node.peerId.toString();
    expect((await stat(join(first.dataDir, 'p2p.key'))).mode & 0o777).toBe(0o600);
    const addrs = (await readFile(join(first.dataDir, 'p2p.addrs'), 'utf8')).trim().split('\n');
    expect(addrs.length).toBeGreaterThan(0);
    for (const a of addrs) expect(a).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/[1-9]\\d*/p2p/${id}$`));

    await first.node.start(); // second start does nothing
    expect(first.node.multiaddrs).toEqual(addrs);
    await net.stopHost(first);
    await first.node.stop(); // second stop does nothing
    expect(first.node.started).toBe(false);

    const again = await net.startHost({ clusterKeyFile: keyFile, dataDir: first.dataDir });
    expect(again.node.peerId.toString()).toBe(id);
  });

  it('keeps dialling a bootstrap peer that is not up yet, then connects and reports peer:connect', async () => {
    const keyFile = await net.clusterKeyFile();
    // Start the seed once to learn an address, stop it, then start a joiner pointing at it.
    const seed = await net.startHost({ clusterKeyFile: keyFile, listen: '127.0.0.1:0' });
    const seedAddr = seed.node.multiaddrs[0];
    const port = /\/tcp\/(\d+)\//.exec(seedAddr)![1];
    await net.stopHost(seed);

    const joiner = await net.startHost({
      clusterKeyFile: keyFile,
      bootstrap: [seedAddr],
      backoff: { initial: 50, max: 200 },
    });
    const connected = new Promise<string>((resolve) =>
      joiner.node.addEventListener('peer:connect', (evt) => resolve((evt as CustomEvent<string>).detail)),
    );
    expect(joiner.node.connectedPeers()).toEqual([]);
    const back = await net.startHost({
      clusterKeyFile: keyFile,
      dataDir: seed.dataDir,
      listen: `127.0.0.1:${port}`,
    });
    expect(await connected).toBe(back.node.peerId.toString());
    await waitFor(
      () => back.node.connectedPeers().includes(joiner.node.peerId.toString()),
      5000,
      'seed sees joiner',
    );
  });

  it('joins the DHT through the bootstrap peer: a newcomer learns of the others, not only of the seed', async () => {
    const clusterKeyFile = await net.clusterKeyFile();
    const [seed] = await net.startCluster(5, { clusterKeyFile });
    await waitFor(() => seed.node.routingTableSize >= 4, 5000, 'seed knows the 4 others');
    const newcomer = await net.startHost({ clusterKeyFile, bootstrap: seed.node.multiaddrs });
    await newcomer.node.joined({ timeout: 10_000 });
    // Its own-ID lookup went through the seed to the peers closest to it. Without the join it would know only
    // the seed until the next periodic self-query, 5 minutes later.
    await waitFor(() => newcomer.node.routingTableSize >= 3, 5000, 'newcomer routing table has 3 peers');
    expect(newcomer.node.connectedPeers().length).toBeGreaterThanOrEqual(3);
  });

  it('opens direct streams to a registered protocol', async () => {
    const [a, b] = await net.startCluster(2);
    await a.node.handle('/xenos/test/echo/1.0.0', (stream) => {
      stream.addEventListener('message', (evt) => stream.send(evt.data));
      stream.addEventListener('remoteCloseWrite', () => stream.close().catch(() => {}));
    });
    const stream = await b.node.dialProtocol(a.node.peerId.toString(), '/xenos/test/echo/1.0.0');
    stream.send(new TextEncoder().encode('hello xenos'));
    await stream.close();
    const parts: Uint8Array[] = [];
    for await (const chunk of stream) parts.push(chunk instanceof Uint8Array ? chunk : chunk.subarray());
    expect(Buffer.concat(parts).toString()).toBe('hello xenos');
  });

  it('parses --p2p HOST:PORT and explains a bad value', () => {
    expect(listenMultiaddr('127.0.0.1:0').toString()).toBe('/ip4/127.0.0.1/tcp/0');
    expect(listenMultiaddr('[::1]:4001').toString()).toBe('/ip6/::1/tcp/4001');
    expect(listenMultiaddr('0.0.0.0:4001').toString()).toBe('/ip4/0.0.0.0/tcp/4001');
    expect(() => listenMultiaddr('127.0.0.1')).toThrow(ListenAddressError);
    expect(() => listenMultiaddr('host:99999')).toThrow(/expected HOST:PORT/);
  });
});
