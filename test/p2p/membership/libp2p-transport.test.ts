// The membership transport over real libp2p nodes on 127.0.0.1 (cluster key, Noise, Yamux) passes the
// transport contract; it keeps ONE outbound stream per peer however many messages it sends (libp2p's
// per-protocol stream limits are never reached); and a peer's frame over the cap is refused before its
// body is read, counted, and its stream aborted.

import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { afterEach, describe, expect, it } from 'vitest';
import { Libp2pDatagramTransport } from '../../../src/p2p/membership/libp2p-transport.ts';
import { MAX_PROBE_MESSAGE_BYTES, SWIM_PROTOCOL } from '../../../src/p2p/membership/messages.ts';
import { TestNet } from '../cluster.ts';
import { transportContract } from './transport-contract.ts';

const nets: TestNet[] = [];
afterEach(async () => {
  await Promise.all(nets.splice(0).map((n) => n.cleanup()));
});

transportContract('libp2p', async () => {
  const net = new TestNet();
  nets.push(net);
  const [x, y] = await net.startCluster(2);
  const a = new Libp2pDatagramTransport({ node: x.node });
  const b = new Libp2pDatagramTransport({ node: y.node });
  const absent = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();
  return { a, b, absent, close: async () => Promise.all([a.stop(), b.stop()]).then(() => {}) };
});

describe('libp2p membership transport', () => {
  it('sends every message to a peer on one reused stream', async () => {
    const net = new TestNet();
    nets.push(net);
    const [x, y] = await net.startCluster(2);
    const a = new Libp2pDatagramTransport({ node: x.node });
    const b = new Libp2pDatagramTransport({ node: y.node });
    let got = 0;
    b.onMessage(() => got++);
    a.onMessage(() => {});
    await a.start();
    await b.start();
    a.send(b.self, Buffer.from('open'), 'probe');
    await expect.poll(() => got, { timeout: 10_000 }).toBe(1);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 200; i++) a.send(b.self, Buffer.from(`m${i}`), 'probe');
      await expect.poll(() => got, { timeout: 10_000 }).toBe(1 + (round + 1) * 200);
    }
    const streams = x.node.libp2p
      .getConnections(y.node.peerId)
      .flatMap((c) => c.streams)
      .filter((s) => s.protocol === SWIM_PROTOCOL);
    expect(streams.length).toBe(1);
    expect(a.dropped.probe).toBe(0);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('refuses a frame over the cap before reading its body, and aborts the stream', async () => {
    const net = new TestNet();
    nets.push(net);
    const [x, y] = await net.startCluster(2);
    const b = new Libp2pDatagramTransport({ node: y.node });
    let got = 0;
    b.onMessage(() => got++);
    await b.start();
    const stream = await x.node.dialProtocol(y.node.peerId.toString(), SWIM_PROTOCOL);
    // A length prefix announcing 1 MiB (the probe cap is 8 KiB), then only the first bytes of it.
    const length = 1024 * 1024;
    const prefix = [(length & 0x7f) | 0x80, ((length >> 7) & 0x7f) | 0x80, length >> 14];
    stream.send(Uint8Array.from([...prefix, ...new Uint8Array(100)]));
    await expect.poll(() => b.refusals.get('too_large'), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => stream.status, { timeout: 10_000 }).not.toBe('open');
    expect(got).toBe(0);
    expect(MAX_PROBE_MESSAGE_BYTES).toBeLessThan(length);
    await b.stop();
  });
});
