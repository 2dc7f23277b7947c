// The timing derived from --host-timeout: the worst case it is built for (README: detection at ~ln N
// periods, the probe round, dissemination, the longest suspicion, the verdict writer's own probe) fits
// inside the timeout with a margin at every timeout an operator may set; Lifeguard's suspicion falls from
// max to min as independent confirmations arrive; the retransmit count grows with log N.

import { describe, expect, it } from 'vitest';
import {
  probeIntervalFor,
  retransmitLimit,
  skipsHeardMembers,
  suspicionTimeoutMs,
  timingFor,
} from '../../../src/p2p/membership/timing.ts';

describe('membership timing', () => {
  // Below 3 s the 100 ms floor of the probe period no longer leaves room for 1,000 hosts: small clusters only.
  it.each([
    [2000, 30],
    [3000, 1000],
    [5000, 1000],
    [15_000, 1000],
    [60_000, 1000],
    [300_000, 1000],
  ])('fits the worst case inside a %i ms host timeout at %i hosts', (tau, hosts) => {
    const t = timingFor(tau);
    const detection = Math.ceil(Math.log(hosts)) * t.probeIntervalMs + t.probeIntervalMs;
    const dissemination = 4 * t.gossipIntervalMs;
    const worst = detection + dissemination + t.suspicionMaxMs + t.probeIntervalMs;
    expect(worst).toBeLessThanOrEqual(0.85 * tau);
    expect(t.probeTimeoutMs).toBeLessThan(t.probeIntervalMs);
    expect(t.suspicionMinMs).toBeLessThan(t.suspicionMaxMs);
  });

  it('probes small clusters less often, within the same worst case', () => {
    const t = timingFor(15_000);
    expect(probeIntervalFor(t, 1)).toBe(t.probeIntervalMs);
    expect(probeIntervalFor(t, 2)).toBe(2.25 * t.probeIntervalMs);
    expect(probeIntervalFor(t, 3)).toBe(1.5 * t.probeIntervalMs);
    expect(probeIntervalFor(t, 4)).toBe(Math.round(1.125 * t.probeIntervalMs));
    for (const n of [5, 30, 1000]) expect(probeIntervalFor(t, n)).toBe(t.probeIntervalMs);
    expect([2, 3, 4, 5].map(skipsHeardMembers)).toEqual([true, true, true, false]);
    // The worst case at N members: nobody probes the dead host for 2N−3 periods (round-robin: first in one
    // shuffled round, last in the next), +1 up to 4 members (a round skipped because it had just spoken),
    // its probe, dissemination, the longest suspicion, the verdict's probe.
    for (const tau of [3000, 15_000, 60_000]) {
      const at = timingFor(tau);
      for (const n of [2, 3, 4, 5]) {
        const period = probeIntervalFor(at, n);
        const waits = 2 * n - 3 + (skipsHeardMembers(n) ? 1 : 0);
        const worst = waits * period + period + 4 * at.gossipIntervalMs + at.suspicionMaxMs + period;
        expect(worst, `τ ${tau} ms, ${n} members`).toBeLessThanOrEqual(0.85 * tau);
        expect(period).toBeGreaterThanOrEqual(at.probeIntervalMs);
      }
    }
  });

  it('lowers the suspicion timeout from max to min as confirmations arrive', () => {
    const t = timingFor(15_000);
    const at = [0, 1, 2, 3, 4].map((c) => suspicionTimeoutMs(t, c, 100));
    expect(at[0]).toBe(t.suspicionMaxMs);
    expect(at[3]).toBe(t.suspicionMinMs);
    expect(at[4]).toBe(t.suspicionMinMs);
    for (let i = 1; i < at.length; i++) expect(at[i]).toBeLessThanOrEqual(at[i - 1]);
    // Two hosts: nobody can confirm the only other host's suspicion, so it waits the longest.
    expect(suspicionTimeoutMs(t, 0, 2)).toBe(t.suspicionMaxMs);
    expect(suspicionTimeoutMs(t, 1, 3)).toBe(t.suspicionMinMs);
  });

  it('sends each update λ·⌈log10(N+1)⌉ times', () => {
    const t = timingFor(15_000);
    expect(retransmitLimit(t, 9)).toBe(4);
    expect(retransmitLimit(t, 100)).toBe(12);
    expect(retransmitLimit(t, 1000)).toBe(16);
  });

  it('refuses a timeout that is not positive', () => {
    expect(() => timingFor(0)).toThrow(/positive/);
  });
});
