// Small clusters: a probe round skips a member that spoke to us within the period (its ping or ack is the
// evidence our probe would fetch), so one ping and its ack serve both ends of a pair — and a host killed
// is still declared dead by every other within the host timeout. Runs the real engine on virtual time
// (the membership simulation), seeded, so a run repeats.

import { describe, expect, it } from 'vitest';
import { runSwimSim } from '../../../bench/lib/swim-sim.ts';

const tau = 15_000;

describe('membership in small clusters (virtual time)', () => {
  it('sends about half the probe traffic of probing every target at 2 and 3 hosts', async () => {
    // Probing every target: 1.33 messages a second per host at 2 hosts and 2.32 at 3 (τ 15 s, no loss).
    const two = await runSwimSim({ hosts: 2, loss: 0, kills: 0, hostTimeoutMs: tau });
    const three = await runSwimSim({ hosts: 3, loss: 0, kills: 0, hostTimeoutMs: tau });
    expect(two.idle.messages).toBeLessThan(0.8);
    expect(three.idle.messages).toBeLessThan(1.6);
    expect(two.falseDeaths + three.falseDeaths).toBe(0);
    // Timers fired per host and second (probe rounds, syncs, each message's arrival): with a gossip
    // timer running while nothing is queued, 4 more.
    expect(three.idleWakeups).toBeLessThan(4);
  });

  it.each([2, 3, 4])(
    'declares a killed host dead everywhere within the timeout at %i hosts, under loss',
    async (hosts) => {
      for (const seed of [1, 7, 42]) {
        const run = await runSwimSim({ hosts, loss: 0.01, kills: hosts - 1, hostTimeoutMs: tau, seed });
        expect(run.kills.length).toBe(hosts - 1);
        for (const k of run.kills) expect(k.allDeadMs, `seed ${seed}`).toBeLessThanOrEqual(tau);
        expect(run.falseDeaths).toBe(0);
      }
    },
  );
});
