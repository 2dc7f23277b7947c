// How much a peer may make SWIM do: a token bucket per peer and channel (`peerRate` messages a second on
// the probe channel, 1 on sync, bursts of twice that), and at most one suspicion per (suspector, member)
// per minimum suspicion time, so a hostile member can neither flood a host nor keep a member flapping.

import type { Clock } from './clock.ts';
import { type Channel, MAX_MEMBERS } from './messages.ts';

export class PeerRateLimiter {
  readonly #clock: Clock;
  readonly #peerRate: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(components: { clock: Clock }, init: { peerRate: number }) {
    this.#clock = components.clock;
    this.#peerRate = init.peerRate;
  }

  /** Whether a message from `peer` on `channel` may be handled now (takes a token). */
  admit(peer: string, channel: Channel): boolean {
    const rate = channel === 'probe' ? this.#peerRate : 1;
    const key = `${channel} ${peer}`;
    const now = this.#clock.now();
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size > 4 * MAX_MEMBERS) this.#buckets.clear();
      b = { tokens: 2 * rate, at: now };
      this.#buckets.set(key, b);
    }
    b.tokens = Math.min(2 * rate, b.tokens + ((now - b.at) * rate) / 1000);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens--;
    return true;
  }
}

export class SuspicionLimiter {
  readonly #clock: Clock;
  readonly #minMs: number;
  /** (suspector, member) → when a suspicion from it last moved the member from alive to suspect. */
  readonly #at = new Map<string, number>();

  constructor(components: { clock: Clock }, init: { minMs: number }) {
    this.#clock = components.clock;
    this.#minMs = init.minMs;
  }

  /** Whether `f`'s suspicion of `p` may start a suspicion now (and if so, remembers it did). */
  mayStart(f: string, p: string): boolean {
    const key = `${f} ${p}`;
    const now = this.#clock.now();
    const last = this.#at.get(key);
    if (last !== undefined && now - last < this.#minMs) return false;
    if (this.#at.size > 4 * MAX_MEMBERS) this.#at.clear();
    this.#at.set(key, now);
    return true;
  }
}
