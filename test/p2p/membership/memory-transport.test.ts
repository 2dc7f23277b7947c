// The in-memory membership network (what the simulation runs on) passes the transport contract, and its
// faults do what the simulation relies on: a host that is down, a partition, loss.

import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { describe, expect, it } from 'vitest';
import { MemoryNetwork } from '../../../src/p2p/membership/memory-transport.ts';
import { VirtualClock } from '../../../src/p2p/membership/virtual-clock.ts';
import { transportContract } from './transport-contract.ts';

async function peerId(): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString();
}

transportContract('in memory', async () => {
  const net = new MemoryNetwork({}, { latencyMs: 1 });
  const a = net.transport(await peerId());
  const b = net.transport(await peerId());
  return {
    a,
    b,
    absent: await peerId(),
    close: async () => Promise.all([a.stop(), b.stop()]).then(() => {}),
  };
});

describe('memory network faults (virtual time)', () => {
  it('drops what goes to or from a host that is down, across a partition, and a share under loss', async () => {
    const clock = new VirtualClock();
    let seed = 1;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return (seed - 1) / 2147483646;
    };
    const net = new MemoryNetwork({ clock }, { latencyMs: 5, random });
    const [a, b, c] = [net.transport('a'), net.transport('b'), net.transport('c')];
    const got: string[] = [];
    for (const t of [a, b, c]) {
      t.onMessage((from, bytes) => got.push(`${from}>${t.self}:${Buffer.from(bytes)}`));
      await t.start();
    }
    net.down('c');
    a.send('c', Buffer.from('1'), 'probe');
    c.send('a', Buffer.from('2'), 'probe');
    net.up('c');
    net.partition(['a'], ['b', 'c']);
    a.send('b', Buffer.from('3'), 'probe');
    b.send('c', Buffer.from('4'), 'probe');
    clock.runUntil(4);
    expect(got).toEqual([]);
    clock.runUntil(5);
    expect(got).toEqual(['b>c:4']);
    net.heal();
    net.loss = 0.5;
    for (let i = 0; i < 1000; i++) a.send('b', Buffer.from('x'), 'probe');
    clock.runUntil(100);
    const arrived = got.length - 1;
    expect(arrived).toBeGreaterThan(400);
    expect(arrived).toBeLessThan(600);
  });
});
