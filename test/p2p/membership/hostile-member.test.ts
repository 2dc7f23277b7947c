// A cluster-key holder speaking the membership protocol with hostile intent, against real libp2p nodes
// running membership: its false suspicion of a live host is refuted by that host and never becomes a
// death; it cannot repeat it at will (rate-limited), forge another member's suspicion or alive record,
// suspect an incarnation the member never signed, or get past the message checks.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Libp2pDatagramTransport } from '../../../src/p2p/membership/libp2p-transport.ts';
import {
  type AliveUpdate,
  aliveStatement,
  encodeMessage,
  type Message,
  type SuspectUpdate,
  suspectStatement,
  type Update,
} from '../../../src/p2p/membership/messages.ts';
import type { MemberChange } from '../../../src/p2p/membership/swim-types.ts';
import { timingFor } from '../../../src/p2p/membership/timing.ts';
import type { PeerSigner } from '../../../src/p2p/peer-signature.ts';
import { TestNet } from '../cluster.ts';
import { allAlive, type SwimHost, signerOf, startSwims, stopSwims } from './helpers.ts';

// 16 s: the rate refusal below must land within the minimum suspicion time (τ/5 = 3.2 s) after the first
// suspicion, across two polls; at 8 s (1.6 s) a slow moment on a loaded machine let it slip.
const timing = timingFor(16_000);

let net: TestNet;
let swims: SwimHost[];
let hostile: Libp2pDatagramTransport;
let hostileSigner: PeerSigner;
let inbox: { from: string; msg: Message }[];

beforeEach(async () => {
  net = new TestNet();
  const hosts = await net.startCluster(4);
  swims = await startSwims(hosts.slice(0, 3), timing);
  hostile = new Libp2pDatagramTransport({ node: hosts[3].node });
  hostileSigner = await signerOf(hosts[3]);
  inbox = [];
  hostile.onMessage((from, bytes) => inbox.push({ from, msg: JSON.parse(Buffer.from(bytes).toString()) }));
  await hostile.start();
  await expect.poll(() => allAlive(swims), { timeout: 15_000 }).toBe(true);
});

afterEach(async () => {
  await hostile.stop();
  await stopSwims(swims);
  await net.cleanup();
});

function sign(stmt: Uint8Array, signer = hostileSigner): string {
  return Buffer.from(signer.sign(stmt)).toString('base64url');
}

function suspicion(p: string, i: number, f = hostileSigner.peerId): SuspectUpdate {
  return { k: 'suspect', p, i, f, g: sign(suspectStatement(p, i, f)) };
}

function gossip(to: SwimHost, u: Update[]): void {
  hostile.send(to.swim.self, encodeMessage({ t: 'gossip', u }, 'probe'), 'probe');
}

/** Every state change any honest host sees about `peer`. */
function watch(peer: string): MemberChange[] {
  const seen: MemberChange[] = [];
  for (const s of swims)
    s.swim.addEventListener('change', (e) => {
      const c = (e as CustomEvent<MemberChange>).detail;
      if (c.peer === peer) seen.push(c);
    });
  return seen;
}

describe('a hostile member', () => {
  it('suspects a live host: the host refutes, nobody declares it dead, and it cannot repeat at once', async () => {
    const [a, x] = swims;
    const changes = watch(x.swim.self);
    const inc = x.swim.incarnation;
    gossip(a, [suspicion(x.swim.self, inc)]);
    await expect.poll(() => x.swim.incarnation, { timeout: 5000 }).toBe(inc + 1);
    expect(changes.some((c) => c.state === 'suspect')).toBe(true);
    // The same suspicion again at the new incarnation, at once (as soon as a holds the refutation):
    // refused, one per minimum suspicion time.
    await expect
      .poll(() => a.swim.member(x.swim.self), { timeout: 5000 })
      .toMatchObject({ state: 'alive', incarnation: inc + 1 });
    const before = a.swim.refusals.get('rate');
    gossip(a, [suspicion(x.swim.self, inc + 1)]);
    await expect.poll(() => a.swim.refusals.get('rate'), { timeout: 5000 }).toBe(before + 1);
    // Longer than the longest suspicion: never dead anywhere, alive everywhere at the refuted incarnation.
    await new Promise((r) => setTimeout(r, timing.suspicionMaxMs + 500));
    expect(changes.filter((c) => c.state === 'dead')).toEqual([]);
    for (const s of swims.filter((s) => s !== x))
      expect(s.swim.member(x.swim.self)).toMatchObject({ state: 'alive', incarnation: inc + 1 });
  });

  it('cannot forge another member’s suspicion, an alive record, or suspect an incarnation never signed', async () => {
    const [a, x, y] = swims;
    const changes = watch(x.swim.self);
    const inc = x.swim.incarnation;
    // x's real record, as x itself sends it in a sync.
    hostile.send(x.swim.self, encodeMessage({ t: 'sync', r: true, ms: [] }, 'sync'), 'sync');
    await expect.poll(() => inbox.some((m) => m.msg.t === 'sync'), { timeout: 5000 }).toBe(true);
    const sync = inbox.find((m) => m.msg.t === 'sync')!.msg as Extract<Message, { t: 'sync' }>;
    const real = sync.ms.find((e) => e.a.p === x.swim.self)!.a;
    // y's name on a suspicion the hostile signed; x's real signature on a higher incarnation.
    const inY: SuspectUpdate = { ...suspicion(x.swim.self, inc), f: y.swim.self };
    const inflated: AliveUpdate = { ...real, i: real.i + 1000 };
    const ownAddrs: AliveUpdate = {
      ...real,
      m: ['/ip4/203.0.113.9/tcp/1'],
      g: sign(aliveStatement(x.swim.self, real.i + 1, ['/ip4/203.0.113.9/tcp/1'])),
    };
    gossip(a, [inY, inflated, ownAddrs]);
    await expect.poll(() => a.swim.refusals.get('bad_signature'), { timeout: 5000 }).toBe(3);
    // A suspicion of an incarnation x never signed is not taken either (only x's current one is).
    gossip(a, [suspicion(x.swim.self, inc + 5)]);
    await new Promise((r) => setTimeout(r, 10 * timing.probeIntervalMs));
    expect(changes).toEqual([]);
    expect(a.swim.member(x.swim.self)).toMatchObject({ state: 'alive', incarnation: inc });
    expect(x.swim.incarnation).toBe(inc);
  });

  it('gets past no message check: not JSON, unknown types, too many updates, bad fields', async () => {
    const [a] = swims;
    const bad = [
      Buffer.from('not json'),
      Buffer.from(JSON.stringify({ t: 'boom', s: 1 })),
      Buffer.from(JSON.stringify({ t: 'ping', s: -1 })),
      Buffer.from(JSON.stringify({ t: 'req', s: 1, x: 'not a peer', n: 'AAAAAAAAAAAAAAAAAAAA' })),
      Buffer.from(
        JSON.stringify({ t: 'gossip', u: Array.from({ length: 33 }, () => suspicion(a.swim.self, 1)) }),
      ),
      Buffer.from(JSON.stringify({ t: 'gossip', u: [{ ...suspicion(a.swim.self, 1), k: 'dead' }] })),
    ];
    for (const b of bad) hostile.send(a.swim.self, b, 'probe');
    await expect.poll(() => a.swim.refusals.get('malformed'), { timeout: 5000 }).toBe(bad.length);
    // And it still answers a well-formed ping.
    hostile.send(a.swim.self, encodeMessage({ t: 'ping', s: 7 }, 'probe'), 'probe');
    await expect
      .poll(() => inbox.some((m) => m.from === a.swim.self && m.msg.t === 'ack' && m.msg.s === 7), {
        timeout: 5000,
      })
      .toBe(true);
  });
});
