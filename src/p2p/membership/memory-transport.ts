// An in-memory network of membership transports on one Clock: each message is delivered after a latency,
// or lost with a probability, or dropped across a partition or to and from a host that is down. The
// simulation (bench/membership-sim.ts) runs a thousand hosts on it on virtual time; unit tests run it on
// real time. It passes the same contract as the libp2p transport (test/p2p/membership/transport-contract.ts)
// and counts what each host sent and received, per channel, as the sizes of the real encoded messages.

import { type Clock, realClock } from './clock.ts';
import { type Channel, capOf } from './messages.ts';
import type { DatagramTransport, MessageHandler } from './transport.ts';

export interface MemoryNetworkInit {
  /** One-way delay in ms (a number, or a function of sender and receiver). Default 1. */
  latencyMs?: number | ((from: string, to: string) => number);
  /** Probability that a message is lost. Default 0. */
  loss?: number;
  random?: () => number;
}

export interface Traffic {
  messages: number;
  bytes: number;
}

export class MemoryNetwork {
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #transports = new Map<string, MemoryTransport>();
  readonly #down = new Set<string>();
  #latency: (from: string, to: string) => number;
  #loss: number;
  #cut: ((a: string, b: string) => boolean) | undefined;

  constructor(components: { clock?: Clock } = {}, init: MemoryNetworkInit = {}) {
    this.#clock = components.clock ?? realClock;
    this.#random = init.random ?? Math.random;
    const latency = init.latencyMs ?? 1;
    this.#latency = typeof latency === 'number' ? () => latency : latency;
    this.#loss = init.loss ?? 0;
  }

  transport(self: string): MemoryTransport {
    const t = new MemoryTransport(this, self);
    this.#transports.set(self, t);
    return t;
  }

  /** A host that is down neither sends nor receives (a kill -9, or a machine gone). */
  down(peer: string): void {
    this.#down.add(peer);
  }

  up(peer: string): void {
    this.#down.delete(peer);
  }

  /** Nothing crosses between `a` and `b` (both lists of peer ids) until heal(). */
  partition(a: string[], b: string[]): void {
    const left = new Set(a);
    const right = new Set(b);
    this.#cut = (x, y) => (left.has(x) && right.has(y)) || (left.has(y) && right.has(x));
  }

  heal(): void {
    this.#cut = undefined;
  }

  set loss(p: number) {
    this.#loss = p;
  }

  /** @internal used by MemoryTransport.send */
  deliver(from: string, to: string, bytes: Uint8Array, channel: Channel): void {
    if (this.#down.has(from) || this.#down.has(to) || this.#cut?.(from, to)) return;
    if (this.#loss > 0 && this.#random() < this.#loss) return;
    const target = this.#transports.get(to);
    if (!target) return;
    this.#clock.setTimeout(
      () => {
        if (!this.#down.has(to)) target.receive(from, bytes, channel);
      },
      this.#latency(from, to),
    );
  }
}

export class MemoryTransport implements DatagramTransport {
  readonly self: string;
  readonly sent: Record<Channel, Traffic> = {
    probe: { messages: 0, bytes: 0 },
    sync: { messages: 0, bytes: 0 },
  };
  readonly received: Record<Channel, Traffic> = {
    probe: { messages: 0, bytes: 0 },
    sync: { messages: 0, bytes: 0 },
  };
  readonly #network: MemoryNetwork;
  #handler: MessageHandler | undefined;
  #running = false;

  constructor(network: MemoryNetwork, self: string) {
    this.#network = network;
    this.self = self;
  }

  async start(): Promise<void> {
    this.#running = true;
  }

  async stop(): Promise<void> {
    this.#running = false;
  }

  send(peer: string, bytes: Uint8Array, channel: Channel): void {
    if (!this.#running || bytes.byteLength > capOf(channel)) return;
    this.sent[channel].messages++;
    this.sent[channel].bytes += bytes.byteLength;
    this.#network.deliver(this.self, peer, bytes, channel);
  }

  setAddresses(): void {}

  forget(): void {}

  onMessage(handler: MessageHandler): void {
    this.#handler = handler;
  }

  /** @internal called by the network */
  receive(from: string, bytes: Uint8Array, channel: Channel): void {
    if (!this.#running) return;
    this.received[channel].messages++;
    this.received[channel].bytes += bytes.byteLength;
    this.#handler?.(from, bytes, channel);
  }
}
