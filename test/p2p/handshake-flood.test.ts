// Connections from peers without the cluster key are dropped fast, so they cannot hold a host's pending
// connection slots (libp2p accepts at most maxIncomingPendingConnections, 100, from addresses not on the
// allow list): a connection that sends garbage is refused as soon as its key confirmation arrives, one that
// sends nothing when the short handshake timeout ends. With 100 such connections open at once, each from its
// own address (so no per-address rate limit helps), a real key holder still joins and replicates.
// The times measured are printed (bench-style figures, not asserted beyond "fast enough to matter").

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { XenosNode } from '../../src/p2p/node.ts';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from '../../src/p2p/pnet/protector.ts';
import { Libp2pTransport } from '../../src/store/replication/libp2p-transport.ts';
import { Replicator } from '../../src/store/replication/replicator.ts';
import { openStore, type SqliteStore } from '../../src/store/sqlite-store.ts';
import { TestNet, waitFor } from './cluster.ts';

const net_ = new TestNet();
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await net_.cleanup();
});

function tcpPort(node: XenosNode): number {
  return Number(/\/tcp\/(\d+)/.exec(node.multiaddrs[0])![1]);
}

/** Opens a raw TCP connection from `from` that sends `bytes` (or nothing); resolves with the ms until the
 *  host closed it. */
function badConnection(
  port: number,
  from: string,
  bytes?: Uint8Array,
): { closed: Promise<number>; socket: net.Socket } {
  const started = performance.now();
  const socket = net.connect({ host: '127.0.0.1', port, localAddress: from });
  socket.on('error', () => {});
  socket.on('data', () => {}); // read the host's nonce and tag, keep the socket flowing
  if (bytes) socket.on('connect', () => socket.write(bytes));
  const closed = new Promise<number>((resolve) =>
    socket.on('close', () => resolve(performance.now() - started)),
  );
  return { closed, socket };
}

async function replicating(
  node: XenosNode,
  name: string,
): Promise<{ store: SqliteStore; replicator: Replicator }> {
  const store = openStore({ path: ':memory:', namespaced: () => true, writer: name });
  const replicator = new Replicator(
    { store, transport: new Libp2pTransport({ node }) },
    { syncIntervalMs: 500 },
  );
  await replicator.start();
  cleanups.push(async () => {
    await replicator.stop();
    store.close();
  });
  return { store, replicator };
}

const item = (name: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'default' },
});

describe('connections without the cluster key', () => {
  it('are refused at once when they send garbage, and after the handshake timeout when silent', async () => {
    const keyFile = await net_.clusterKeyFile();
    const host = await net_.startHost({ clusterKeyFile: keyFile, allow: [] });
    const port = tcpPort(host.node);
    const garbage = await badConnection(port, '127.0.0.2', randomBytes(64)).closed;
    const silent = await badConnection(port, '127.0.0.3').closed;
    // With another key: a real node, whose nonce exchange passes but whose confirmation cannot.
    const other = await net_.startHost({ clusterKeyFile: await net_.clusterKeyFile() });
    const started = performance.now();
    await expect(other.node.dial(host.node.multiaddrs[0], { timeout: 10_000 })).rejects.toThrow();
    const wrongKey = performance.now() - started;
    console.log(
      `bad connection held: garbage ${garbage.toFixed(0)} ms, wrong key ${wrongKey.toFixed(0)} ms, ` +
        `silent ${silent.toFixed(0)} ms (handshake timeout ${DEFAULT_HANDSHAKE_TIMEOUT_MS} ms)`,
    );
    const refused = host.node.handshakeRefusals.snapshot();
    expect(refused.bad_key).toBeGreaterThanOrEqual(2); // the garbage and the other key
    expect(refused.timeout).toBeGreaterThanOrEqual(1); // the silent one
    // Refused by the key check, not by waiting: well before a silent connection is given up.
    expect(garbage).toBeLessThan(DEFAULT_HANDSHAKE_TIMEOUT_MS);
    expect(silent).toBeGreaterThanOrEqual(DEFAULT_HANDSHAKE_TIMEOUT_MS - 50);
  }, 30_000);

  it('100 silent ones and more sending garbage, from 120 addresses, do not keep a key holder out for long', async () => {
    const keyFile = await net_.clusterKeyFile();
    const victim = await net_.startHost({ clusterKeyFile: keyFile, allow: [] });
    const port = tcpPort(victim.node);
    const { store: victimStore } = await replicating(victim.node, 'victim');
    victimStore.create(item('before-the-flood'));
    // Every pending slot taken by a connection that says nothing, plus some that send garbage.
    const silent = Array.from({ length: 100 }, (_, i) => badConnection(port, `127.0.1.${i + 1}`));
    const garbage = Array.from({ length: 20 }, (_, i) =>
      badConnection(port, `127.0.2.${i + 1}`, randomBytes(64)),
    );
    const flood = [...silent, ...garbage];
    cleanups.push(() => {
      for (const f of flood) f.socket.destroy();
    });
    await waitFor(() => flood.every((f) => f.socket.readyState !== 'opening'), 5_000, 'the flood to connect');
    const started = performance.now();
    const joiner = await net_.startHost({ clusterKeyFile: keyFile, bootstrap: victim.node.multiaddrs });
    const { store } = await replicating(joiner.node, 'joiner');
    // Promptly: before the fix, silent connections held their slots for the 10 s upgrade timeout and the
    // joiner's dials (backing off 0.2, 0.4, 0.8, … s) got in after about 12 s.
    await waitFor(
      () => store.get({ kind: 'ConfigMap', namespace: 'default', name: 'before-the-flood' }) != null,
      DEFAULT_HANDSHAKE_TIMEOUT_MS + 6_000,
      'the joiner to replicate',
    );
    const joined = performance.now() - started;
    const silentHeld = (await Promise.all(silent.map((f) => f.closed))).sort((a, b) => a - b);
    const garbageHeld = (await Promise.all(garbage.map((f) => f.closed))).sort((a, b) => a - b);
    console.log(
      `flood: 100 silent held p50 ${silentHeld[50].toFixed(0)} ms, max ${silentHeld[99].toFixed(0)} ms; ` +
        `20 garbage held p50 ${garbageHeld[10].toFixed(0)} ms, max ${garbageHeld[19].toFixed(0)} ms; ` +
        `a key holder joined and replicated ${joined.toFixed(0)} ms after the flood was in`,
    );
    // Writes flow both ways once joined.
    store.create(item('after-the-flood'));
    await waitFor(
      () => victimStore.get({ kind: 'ConfigMap', namespace: 'default', name: 'after-the-flood' }) != null,
      10_000,
      'the victim to replicate',
    );
    const refused = victim.node.handshakeRefusals.snapshot();
    expect(refused.timeout).toBeGreaterThanOrEqual(90);
  }, 60_000);
});
