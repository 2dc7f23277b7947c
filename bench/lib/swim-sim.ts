// Runs the membership protocol itself (src/p2p/membership/swim.ts, real Ed25519 keys and signatures, real
// encoded messages) for N hosts in one process on virtual time (VirtualClock + MemoryNetwork): hosts join,
// the cluster idles, then hosts are killed one at a time. Reports what each host sends per second (idle and
// while a death spreads) and, per kill, when the first host suspected the dead one, when the first declared
// it dead and when the last live host did; and whether any live host was ever declared dead.

import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { MemoryNetwork } from '../../src/p2p/membership/memory-transport.ts';
import { Swim } from '../../src/p2p/membership/swim.ts';
import type { MemberChange } from '../../src/p2p/membership/swim-types.ts';
import { timingFor } from '../../src/p2p/membership/timing.ts';
import { VirtualClock } from '../../src/p2p/membership/virtual-clock.ts';
import { peerSigner } from '../../src/p2p/peer-signature.ts';

export interface SwimSimInit {
  hosts: number;
  /** Probability that a message is lost (during the idle and kill phases; joining runs without loss). */
  loss: number;
  kills: number;
  hostTimeoutMs: number;
  seed?: number;
}

export interface Rate {
  messages: number;
  bytes: number;
}

export interface KillResult {
  firstSuspectMs: number;
  firstDeadMs: number;
  allDeadMs: number;
}

export interface SwimSimResult {
  /** Sent per host per second, both channels, while nothing changes. */
  idle: Rate;
  /** Timers fired per host per second while nothing changes (membership's own, and each message's
   *  arrival): the wake-ups a real host would have from membership. */
  idleWakeups: number;
  /** Sent per host per second in the windows after each kill, until every host declared it dead. */
  busy: Rate;
  kills: KillResult[];
  /** Live hosts declared dead by a live host (must be 0) and suspicions refuted. */
  falseDeaths: number;
  refutations: number;
  joinMs: number;
  realMs: number;
}

/** A small seeded generator (Park–Miller), so a run can be repeated. */
export function seeded(seed: number): () => number {
  let s = seed % 2147483647 || 1;
  return () => {
    s = (s * 16807) % 2147483647;
    return (s - 1) / 2147483646;
  };
}

export async function runSwimSim(init: SwimSimInit): Promise<SwimSimResult> {
  const t0 = performance.now();
  const random = seeded(init.seed ?? 42);
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ clock }, { latencyMs: () => 0.2 + 1.8 * random(), random });
  const timing = timingFor(init.hostTimeoutMs);
  const swims: Swim[] = [];
  for (let i = 0; i < init.hosts; i++) {
    const key = await generateKeyPair('Ed25519');
    const id = peerIdFromPrivateKey(key).toString();
    const transport = net.transport(id);
    await transport.start();
    swims.push(
      new Swim(
        { transport, signer: peerSigner(key, id), clock, random },
        { timing, incarnation: 1, addrs: [`/ip4/10.${i >> 8}.${i & 255}.1/tcp/7000/p2p/${id}`] },
      ),
    );
  }
  const killed = new Set<string>();
  let falseDeaths = 0;
  let trial: { victim: string; at: number; suspectAt?: number; dead: Map<string, number> } | undefined;
  for (const s of swims) {
    s.addEventListener('change', (e) => {
      const c = (e as CustomEvent<MemberChange>).detail;
      if (killed.has(s.self)) return;
      if (c.state === 'dead' && !killed.has(c.peer)) falseDeaths++;
      if (trial && c.peer === trial.victim) {
        if (c.state === 'suspect') trial.suspectAt ??= clock.now();
        if (c.state === 'dead' && !trial.dead.has(s.self)) trial.dead.set(s.self, clock.now());
      }
    });
  }

  // Join: host 0 first, then one every few ms, each through host 0 and one earlier host.
  swims[0].start();
  const spacing = 5000 / init.hosts;
  for (let i = 1; i < swims.length; i++) {
    clock.setTimeout(() => {
      swims[i].start();
      swims[i].join(swims[0].self);
      swims[i].join(swims[Math.floor(random() * i)].self);
    }, i * spacing);
  }
  const everyoneKnown = (): boolean =>
    swims.every((s) => s.members().filter((m) => m.state === 'alive').length === swims.length - 1);
  let t = 5000;
  const advance = (ms: number): void => {
    t += ms;
    clock.runUntil(t);
  };
  while (!everyoneKnown()) {
    if (t > 600_000)
      throw new Error(`membership sim: ${init.hosts} hosts did not all learn each other in 600 s`);
    advance(1000);
  }
  const joinMs = t;
  // Let the join's updates finish spreading before measuring the idle cluster.
  advance(3 * timing.syncIntervalMs);
  net.loss = init.loss;

  const live = () => swims.filter((s) => !killed.has(s.self));
  const sentNow = () => live().map((s) => ({ s, m: total(s).messages, b: total(s).bytes }));
  const rate = (before: ReturnType<typeof sentNow>, ms: number): Rate => {
    let m = 0;
    let b = 0;
    for (const x of before) {
      m += total(x.s).messages - x.m;
      b += total(x.s).bytes - x.b;
    }
    return { messages: (m / before.length / ms) * 1000, bytes: (b / before.length / ms) * 1000 };
  };

  const idleMs = 60_000;
  const idleBefore = sentNow();
  const firedBefore = clock.fired;
  advance(idleMs);
  const idle = rate(idleBefore, idleMs);
  const idleWakeups = ((clock.fired - firedBefore) / idleBefore.length / idleMs) * 1000;

  const kills: KillResult[] = [];
  const busyRates: Rate[] = [];
  for (let k = 0; k < init.kills && live().length > 1; k++) {
    const candidates = live();
    const victim = candidates[Math.floor(random() * candidates.length)];
    killed.add(victim.self);
    net.down(victim.self);
    victim.stop();
    trial = { victim: victim.self, at: t, dead: new Map() };
    const before = sentNow();
    const observers = live().length;
    const start = t;
    while (trial.dead.size < observers && t - start < 10 * init.hostTimeoutMs) advance(100);
    busyRates.push(rate(before, t - start));
    const deaths = [...trial.dead.values()].map((d) => d - trial!.at);
    kills.push({
      firstSuspectMs: (trial.suspectAt ?? Number.NaN) - trial.at,
      firstDeadMs: Math.min(...deaths),
      allDeadMs: trial.dead.size < observers ? Number.POSITIVE_INFINITY : Math.max(...deaths),
    });
    trial = undefined;
    advance(2 * init.hostTimeoutMs);
  }
  for (const s of swims) s.stop();
  const busy = {
    messages: busyRates.reduce((a, r) => a + r.messages, 0) / Math.max(1, busyRates.length),
    bytes: busyRates.reduce((a, r) => a + r.bytes, 0) / Math.max(1, busyRates.length),
  };
  const refutations = swims.reduce((a, s) => a + s.stats.refutations, 0);
  return { idle, idleWakeups, busy, kills, falseDeaths, refutations, joinMs, realMs: performance.now() - t0 };
}

function total(s: Swim): Rate {
  return {
    messages: s.stats.sent.probe.messages + s.stats.sent.sync.messages,
    bytes: s.stats.sent.probe.bytes + s.stats.sent.sync.bytes,
  };
}
