// The contract every membership transport passes: the libp2p transport over real nodes
// (libp2p-transport.test.ts) and the in-memory network the simulation runs on (memory-transport.test.ts).
// Datagram semantics: messages arrive with their authenticated sender on the channel they were sent on,
// in order on one channel between two hosts; what is over a channel's cap, to a peer that cannot be
// reached, or after stop() is never delivered, and send() never throws.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_PROBE_MESSAGE_BYTES, MAX_SYNC_MESSAGE_BYTES } from '../../../src/p2p/membership/messages.ts';
import type { DatagramTransport } from '../../../src/p2p/membership/transport.ts';

export interface TransportPair {
  a: DatagramTransport;
  b: DatagramTransport;
  /** A peer id of a host that is not running. */
  absent: string;
  close(): Promise<void>;
}

interface Received {
  from: string;
  text: string;
  channel: string;
}

export function transportContract(name: string, make: () => Promise<TransportPair>): void {
  describe(`membership transport contract: ${name}`, () => {
    let pair: TransportPair;
    let atA: Received[];
    let atB: Received[];

    beforeEach(async () => {
      pair = await make();
      atA = [];
      atB = [];
      pair.a.onMessage((from, bytes, channel) =>
        atA.push({ from, text: Buffer.from(bytes).toString(), channel }),
      );
      pair.b.onMessage((from, bytes, channel) =>
        atB.push({ from, text: Buffer.from(bytes).toString(), channel }),
      );
      await pair.a.start();
      await pair.b.start();
    });

    afterEach(async () => {
      await pair.close();
    });

    it('delivers each message with its sender, on its channel, in order, both ways', async () => {
      for (let i = 0; i < 50; i++) pair.a.send(pair.b.self, Buffer.from(`probe ${i}`), 'probe');
      pair.a.send(pair.b.self, Buffer.from('full state'), 'sync');
      pair.b.send(pair.a.self, Buffer.from('answer'), 'probe');
      await expect.poll(() => atB.length, { timeout: 10_000 }).toBe(51);
      await expect.poll(() => atA.length, { timeout: 10_000 }).toBe(1);
      const probes = atB.filter((m) => m.channel === 'probe');
      expect(probes.map((m) => m.text)).toEqual(Array.from({ length: 50 }, (_, i) => `probe ${i}`));
      expect(atB.find((m) => m.channel === 'sync')).toEqual({
        from: pair.a.self,
        text: 'full state',
        channel: 'sync',
      });
      expect(new Set(atB.map((m) => m.from))).toEqual(new Set([pair.a.self]));
      expect(atA[0]).toEqual({ from: pair.b.self, text: 'answer', channel: 'probe' });
    });

    it('never delivers a message over its channel cap, and delivers the next one', async () => {
      expect(() =>
        pair.a.send(pair.b.self, new Uint8Array(MAX_PROBE_MESSAGE_BYTES + 1), 'probe'),
      ).not.toThrow();
      expect(() =>
        pair.a.send(pair.b.self, new Uint8Array(MAX_SYNC_MESSAGE_BYTES + 1), 'sync'),
      ).not.toThrow();
      // A probe-sized message too big for the probe channel fits the sync channel.
      pair.a.send(pair.b.self, new Uint8Array(MAX_PROBE_MESSAGE_BYTES + 1).fill(120), 'sync');
      pair.a.send(pair.b.self, Buffer.from('after'), 'probe');
      await expect.poll(() => atB.length, { timeout: 10_000 }).toBe(2);
      expect(atB.find((m) => m.channel === 'probe')?.text).toBe('after');
      expect(atB.find((m) => m.channel === 'sync')?.text.length).toBe(MAX_PROBE_MESSAGE_BYTES + 1);
    });

    it('loses a message to a peer that cannot be reached, without throwing', async () => {
      expect(() => pair.a.send(pair.absent, Buffer.from('lost'), 'probe')).not.toThrow();
      expect(() => pair.a.send(pair.absent, Buffer.from('lost'), 'sync')).not.toThrow();
      pair.a.send(pair.b.self, Buffer.from('still works'), 'probe');
      await expect.poll(() => atB.map((m) => m.text), { timeout: 10_000 }).toEqual(['still works']);
    });

    it('delivers nothing to a stopped transport', async () => {
      await pair.b.stop();
      pair.a.send(pair.b.self, Buffer.from('after stop'), 'probe');
      pair.a.send(pair.b.self, Buffer.from('after stop'), 'sync');
      // Round trip through another path shows the messages had their chance to arrive.
      pair.b.send(pair.a.self, Buffer.from('stopped side speaks'), 'probe');
      await new Promise((r) => setTimeout(r, 300));
      expect(atB).toEqual([]);
    });
  });
}
