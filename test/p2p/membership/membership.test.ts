// Membership (SWIM) over real libp2p nodes in one process, at the timing a 5 s host timeout derives
// (probe every 167 ms, suspicion 1–2 s): hosts join; a killed host and a frozen one (connections open,
// nothing answers) are declared dead by every other host within the host timeout; a slow host that
// answers late is suspected but refutes and is never declared dead; a partitioned host is declared dead
// on both sides and every host is alive again everywhere after the partition heals.

import { afterEach, describe, expect, it } from 'vitest';
import type { MemberChange } from '../../../src/p2p/membership/swim-types.ts';
import { timingFor } from '../../../src/p2p/membership/timing.ts';
import { TestNet } from '../cluster.ts';
import { allAlive, type SwimHost, startSwims, statesOf, stopSwims } from './helpers.ts';

const HOST_TIMEOUT_MS = 5000;
const timing = { ...timingFor(HOST_TIMEOUT_MS), syncIntervalMs: 2000 };

let net: TestNet;
let swims: SwimHost[] = [];
afterEach(async () => {
  await stopSwims(swims);
  swims = [];
  await net.cleanup();
});

async function cluster(n: number): Promise<SwimHost[]> {
  net = new TestNet();
  swims = await startSwims(await net.startCluster(n), timing);
  await expect.poll(() => allAlive(swims), { timeout: 15_000, interval: 50 }).toBe(true);
  return swims;
}

/** Resolves with the time (ms after `since`) each of `observers` declared `peer` dead. */
function deathTimes(observers: SwimHost[], peer: string, since: number): Promise<number>[] {
  return observers.map(
    (o) =>
      new Promise<number>((resolve) => {
        const listener = (evt: Event) => {
          const c = (evt as CustomEvent<MemberChange>).detail;
          if (c.peer === peer && c.state === 'dead') {
            o.swim.removeEventListener('change', listener);
            resolve(performance.now() - since);
          }
        };
        o.swim.addEventListener('change', listener);
      }),
  );
}

describe('membership over real libp2p nodes', () => {
  it('a killed host is declared dead by every other host within the host timeout', async () => {
    const all = await cluster(5);
    const [victim, ...rest] = [all[2], ...all.filter((_, i) => i !== 2)];
    const t0 = performance.now();
    const deaths = deathTimes(rest, victim.swim.self, t0);
    victim.swim.stop();
    await victim.host.node.stop(); // its connections close, as at a kill -9
    const times = await Promise.all(deaths);
    expect(Math.max(...times)).toBeLessThan(HOST_TIMEOUT_MS);
    // Nobody else was taken for dead on the way.
    for (const o of rest)
      for (const p of rest) if (o !== p) expect(o.swim.member(p.swim.self)?.state).toBe('alive');
  });

  it('a frozen host (connections open, no answer) is declared dead by every other host within the timeout', async () => {
    const all = await cluster(4);
    const victim = all[3];
    const rest = all.slice(0, 3);
    const t0 = performance.now();
    const deaths = deathTimes(rest, victim.swim.self, t0);
    victim.swim.stop();
    const times = await Promise.all(deaths);
    expect(Math.max(...times)).toBeLessThan(HOST_TIMEOUT_MS);
    expect(victim.host.node.connectedPeers().length).toBeGreaterThan(0);
  });

  it('a slow host that answers late is suspected, refutes, and is never declared dead', async () => {
    const all = await cluster(4);
    const slow = all[1];
    const others = all.filter((s) => s !== slow);
    const changes: MemberChange[] = [];
    for (const o of others)
      o.swim.addEventListener('change', (e) => {
        const c = (e as CustomEvent<MemberChange>).detail;
        if (c.peer === slow.swim.self) changes.push(c);
      });
    // Every message to it arrives 2.5 probe periods late: its acks miss every probe round.
    slow.transport.delayMs = 2.5 * timing.probeIntervalMs;
    await expect.poll(() => slow.swim.stats.refutations, { timeout: 10_000 }).toBeGreaterThan(0);
    // Held slow for two of the longest suspicions: it is refuted each time, never dead.
    await new Promise((r) => setTimeout(r, 2 * timing.suspicionMaxMs));
    slow.transport.delayMs = 0;
    expect(changes.some((c) => c.state === 'suspect')).toBe(true);
    expect(changes.filter((c) => c.state === 'dead')).toEqual([]);
    await expect
      .poll(() => statesOf(others, slow.swim.self), { timeout: 10_000 })
      .toEqual(['alive', 'alive', 'alive']);
  });

  it('a partitioned host is dead on both sides, and alive everywhere once the partition heals', async () => {
    const all = await cluster(4);
    const island = all[0];
    const mainland = all.slice(1);
    for (const m of mainland) {
      m.transport.cut.add(island.swim.self);
      island.transport.cut.add(m.swim.self);
    }
    await expect
      .poll(() => statesOf(mainland, island.swim.self), { timeout: HOST_TIMEOUT_MS })
      .toEqual(['dead', 'dead', 'dead']);
    await expect
      .poll(() => mainland.map((m) => island.swim.member(m.swim.self)?.state), { timeout: HOST_TIMEOUT_MS })
      .toEqual(['dead', 'dead', 'dead']);
    // The mainland never doubts itself.
    expect(allAlive(mainland)).toBe(true);
    for (const m of mainland) {
      m.transport.cut.delete(island.swim.self);
      island.transport.cut.delete(m.swim.self);
    }
    // Nothing reconnects (the libp2p connections never dropped): the periodic exchange with a dead member
    // tells each side what the other holds, both refute, and the news spreads.
    await expect
      .poll(() => allAlive(all), { timeout: 4 * timing.syncIntervalMs + HOST_TIMEOUT_MS })
      .toBe(true);
  });
});
