// How the membership protocol's periods and timeouts derive from `--host-timeout` (τ): the one bound an
// operator sets is "a dead host is NotReady on every host within τ", and every period here is a fraction
// of it, chosen so that the worst case of detection + suspicion + dissemination + the verdict fits with a
// margin (the derivation is in README.md, the measured figures in bench/membership-sim.ts).

export interface SwimTiming {
  /** T: one probe round (one member probed) per period. */
  probeIntervalMs: number;
  /** How long a direct ping waits for its ack before asking `indirectChecks` others (ping-req). */
  probeTimeoutMs: number;
  /** k: members asked to probe a silent target for us. */
  indirectChecks: number;
  /** Pending updates go to `gossipFanout` random members this often (only while there are any). */
  gossipIntervalMs: number;
  gossipFanout: number;
  /** Each update is sent λ·⌈log10(N+1)⌉ times by each member (λ = retransmitMult). */
  retransmitMult: number;
  /** A suspect that does not refute is dead after between min (with `suspicionConfirmations`
   *  independent suspicions) and max (one suspicion, e.g. a lone hostile member's). */
  suspicionMinMs: number;
  suspicionMaxMs: number;
  suspicionConfirmations: number;
  /** Full state exchanged with one random member this often (scaled up with log2(N/32) above 32
   *  members), and with every newly connected peer that is not known alive. */
  syncIntervalMs: number;
}

export const DEFAULT_HOST_TIMEOUT_MS = 15_000;

/**
 * The timing for a host timeout τ: T = τ/30 (100 ms..2 s), the direct ping waits T/2 and the ping-req
 * the rest of the round, gossip every T/2 to 3 members, suspicion between τ/5 and 2τ/5.
 *
 * Worst case until a host is NotReady everywhere, at 1,000 members: no one probes the dead host for
 * ≈ ln(N) = 7 periods (p99.9, round-robin probing from N members at random phases), +1 period for the
 * probe itself, +≈4 gossip rounds for the suspicion to spread, + the longest suspicion (2τ/5), + one
 * period for the verdict writer's own confirming probe: 8T + 2T + 0.4τ + T ≈ 0.77τ, leaving ≈ τ/4
 * (≈ 3.5 s at 15 s) for lost messages, loaded event loops and the replicated write.
 */
export function timingFor(hostTimeoutMs: number = DEFAULT_HOST_TIMEOUT_MS): SwimTiming {
  if (!(hostTimeoutMs > 0)) throw new RangeError(`host timeout must be positive, got ${hostTimeoutMs}`);
  const probeIntervalMs = Math.round(Math.min(2000, Math.max(100, hostTimeoutMs / 30)));
  return {
    probeIntervalMs,
    probeTimeoutMs: Math.round(probeIntervalMs / 2),
    indirectChecks: 3,
    gossipIntervalMs: Math.round(probeIntervalMs / 2),
    gossipFanout: 3,
    retransmitMult: 4,
    suspicionMinMs: Math.round(hostTimeoutMs / 5),
    suspicionMaxMs: Math.round((2 * hostTimeoutMs) / 5),
    suspicionConfirmations: 3,
    syncIntervalMs: Math.max(30_000, 2 * hostTimeoutMs),
  };
}

/** The probe periods the worst case above spends finding a dead host and confirming it: ≈ 7 before anyone
 *  probes it, the probe itself, and the verdict writer's own probe. */
const DETECTION_BUDGET_PERIODS = 9;

/**
 * Whether a probe round at N members (this host included) skips a target heard from within the period.
 * Any message from a member (its ping, its ack, its gossip, over a connection authenticated as it) shows
 * it alive as well as our own probe would, so in a small cluster one ping and its ack serve both ends:
 * the pair's next round is skipped by whichever side received the other's within the period. A member
 * that dies just after speaking can so have one round skipped before anyone probes it (never two: the
 * next round comes a period later, and by then it has been silent a whole period), and that extra period
 * is spent out of the same budget below. Only up to 4 members: there the round-robin bounds the wait
 * (2N−3 periods, +1 fits in the 7); in larger clusters a target has seldom just spoken to us, and the
 * ≈ ln N wait there is a probability the skip would stretch.
 */
export function skipsHeardMembers(members: number): boolean {
  return 2 * members - 3 + 1 <= DETECTION_BUDGET_PERIODS - 2;
}

/**
 * The probe period at N members (this host included). `timingFor`'s T = τ/30 is sized for thousands of
 * members, where ≈ 7 periods can pass before anyone probes a dead host. With few members the round-robin
 * bounds that wait itself: each host probes every other at least once in 2(N−1)−1 periods (a target first
 * in one shuffled round and last in the next), so someone probes a dead host within min(2N−3, 7) periods,
 * plus the one round a recent message can skip (`skipsHeardMembers`, up to 4 members). Spending the same
 * 9-period budget on fewer waits lets the period grow: 2.25T at 2 members, 1.5T at 3, 1.125T at 4, T from 5
 * on. Detection stays within the same bound, and a small idle cluster probes (and so encrypts, frames and
 * wakes) less. Alone, T: the round is what asks the seeds again.
 */
export function probeIntervalFor(timing: SwimTiming, members: number): number {
  if (members < 2) return timing.probeIntervalMs;
  const skipped = skipsHeardMembers(members) ? 1 : 0;
  const waits = Math.min(2 * members - 3 + skipped, DETECTION_BUDGET_PERIODS - 2);
  return Math.round((timing.probeIntervalMs * DETECTION_BUDGET_PERIODS) / (waits + 2));
}

/** Lifeguard's suspicion timeout: max with no confirmation beyond the first suspicion, falling
 *  logarithmically to min once `k` other members confirmed it. With two members (k = 0) nobody can
 *  confirm, so the lone suspicion waits the maximum: a two-host cluster whose hosts stall together
 *  (a loaded machine, a nested hypervisor) must not call its peer dead at τ/5 when 2τ/5 still fits
 *  in τ (memberlist takes the minimum there; we prefer fewer false deaths over 0.2τ of speed). */
export function suspicionTimeoutMs(timing: SwimTiming, confirmations: number, members: number): number {
  const k = Math.min(timing.suspicionConfirmations, Math.max(0, members - 2));
  const { suspicionMinMs: min, suspicionMaxMs: max } = timing;
  if (k < 1) return max;
  const frac = Math.log(Math.min(confirmations, k) + 1) / Math.log(k + 1);
  return Math.max(min, Math.round(max - (max - min) * frac));
}

/** How many times each member sends one update: λ·⌈log10(N+1)⌉. */
export function retransmitLimit(timing: SwimTiming, members: number): number {
  return timing.retransmitMult * Math.max(1, Math.ceil(Math.log10(members + 1)));
}

/** The full-state exchange period at N members (memberlist's scaling above 32). */
export function syncIntervalFor(timing: SwimTiming, members: number): number {
  const scale = members <= 32 ? 1 : Math.ceil(Math.log2(members / 32)) + 1;
  return timing.syncIntervalMs * scale;
}
