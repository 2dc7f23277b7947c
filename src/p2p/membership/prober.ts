// SWIM's probe: ping a member, and without an ack within the probe timeout ask k others to ping it
// (ping-req); the verdict (acked or not) comes by the end of the probe interval. It also serves the
// other side: acks pings, relays ping-reqs (at most MAX_RELAYS at a time) and passes a relayed ack back
// only when it is the target's signature over the requester's nonce. The engine (swim.ts) decides what a
// failed probe means.

import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from './clock.ts';
import type { Member } from './member-list.ts';
import {
  ackStatement,
  type Channel,
  type Message,
  type ProbeMessage,
  type Update,
  verifyAck,
} from './messages.ts';
import type { SwimRefusalReason, SwimStats } from './swim-types.ts';
import { short } from './swim-types.ts';
import type { SwimTiming } from './timing.ts';

interface PendingProbe {
  target: string;
  nonce?: string;
  timer?: TimerHandle;
  done: (ok: boolean) => void;
}

interface Relay {
  requester: string;
  seq: number;
  target: string;
  timer: TimerHandle;
}

const MAX_RELAYS = 256;
const MAX_PENDING = 256;

/** What the prober uses of the engine. */
export interface ProberComponents {
  self: string;
  timing: SwimTiming;
  clock: Clock;
  stats: SwimStats;
  refusals: { count(reason: SwimRefusalReason, detail: string): void };
  send(peer: string, msg: Message, channel: Channel): void;
  /** Updates to piggyback (to `peer`, with the note that we suspect it, if we do). */
  updates(peer?: string): { u?: Update[] };
  /** Up to `count` alive members to ask for an indirect probe, never `target`. */
  helpers(count: number, target: string): Member[];
  /** This host's signature over an ack statement. */
  sign(statement: Uint8Array): string;
  /** `peer` answered a probe of ours. */
  acked(peer: string): void;
}

export class Prober {
  readonly #c: ProberComponents;
  readonly #pending = new Map<number, PendingProbe>();
  readonly #relays = new Map<number, Relay>();
  #seq = 0;

  constructor(components: ProberComponents) {
    this.#c = components;
  }

  /** Probes `target` directly, then through k others; `done(true)` on an ack, `done(false)` otherwise. */
  probe(target: string, done: (ok: boolean) => void): void {
    if (this.#pending.size >= MAX_PENDING) {
      done(false);
      return;
    }
    const c = this.#c;
    const seq = ++this.#seq;
    const probe: PendingProbe = { target, done };
    this.#pending.set(seq, probe);
    c.send(target, { t: 'ping', s: seq, ...c.updates(target) }, 'probe');
    const { probeTimeoutMs, probeIntervalMs, indirectChecks } = c.timing;
    probe.timer = this.#after(probeTimeoutMs, () => {
      if (this.#pending.get(seq) !== probe) return;
      c.stats.indirectProbes++;
      probe.nonce = randomBytes(16).toString('base64url');
      for (const helper of c.helpers(indirectChecks, target)) {
        c.send(helper.peer, { t: 'req', s: seq, x: target, n: probe.nonce, ...c.updates() }, 'probe');
      }
      probe.timer = this.#after(probeIntervalMs - probeTimeoutMs, () => {
        if (this.#pending.get(seq) !== probe) return;
        this.#pending.delete(seq);
        done(false);
      });
    });
  }

  /** Handles a probe-channel message (ping, ack, ping-req). */
  handle(from: string, msg: ProbeMessage): void {
    const c = this.#c;
    switch (msg.t) {
      case 'ping': {
        const ack: ProbeMessage = msg.n
          ? { t: 'ack', s: msg.s, x: c.self, g: c.sign(ackStatement(c.self, msg.n)) }
          : { t: 'ack', s: msg.s };
        c.send(from, { ...ack, ...c.updates(from) }, 'probe');
        return;
      }
      case 'ack': {
        const relay = this.#relays.get(msg.s);
        if (relay && from === relay.target && msg.x === relay.target && msg.g) {
          this.#relays.delete(msg.s);
          relay.timer.cancel();
          c.send(relay.requester, { t: 'ack', s: relay.seq, x: msg.x, g: msg.g }, 'probe');
          return;
        }
        const probe = this.#pending.get(msg.s);
        if (!probe) return; // late, or not ours
        const direct = from === probe.target && msg.x === undefined;
        const relayed =
          msg.x === probe.target && probe.nonce !== undefined && verifyAck(probe.target, probe.nonce, msg.g!);
        if (!direct && !relayed) return;
        this.#pending.delete(msg.s);
        probe.timer?.cancel();
        c.acked(probe.target);
        probe.done(true);
        return;
      }
      case 'req': {
        if (msg.x === c.self || msg.x === from) return;
        if (this.#relays.size >= MAX_RELAYS) {
          c.refusals.count('rate', `ping-req from ${short(from)}: ${MAX_RELAYS} relays pending`);
          return;
        }
        const seq = ++this.#seq;
        const timer = c.clock.setTimeout(() => this.#relays.delete(seq), c.timing.probeIntervalMs);
        this.#relays.set(seq, { requester: from, seq: msg.s, target: msg.x, timer });
        c.send(msg.x, { t: 'ping', s: seq, n: msg.n, ...c.updates() }, 'probe');
        return;
      }
      case 'gossip':
        return;
    }
  }

  /** Cancels every pending probe and relay (their callbacks never run). */
  stop(): void {
    for (const p of this.#pending.values()) p.timer?.cancel();
    this.#pending.clear();
    for (const r of this.#relays.values()) r.timer.cancel();
    this.#relays.clear();
  }

  /** A timer that, when its callback is due but the event loop ran it late (a stall here, not silence
   *  there), first lets pending input in (one more turn: acks already received are read before the
   *  next timers), so a busy host does not suspect others for its own slowness. */
  #after(ms: number, fn: () => void): TimerHandle {
    const clock = this.#c.clock;
    const due = clock.now() + ms;
    const slack = Math.max(20, ms / 4);
    let handle = clock.setTimeout(() => {
      if (clock.now() - due > slack) handle = clock.setTimeout(fn, 0);
      else fn();
    }, ms);
    return { cancel: () => handle.cancel() };
  }
}
