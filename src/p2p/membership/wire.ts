// The membership's messages on the wire (and the peers the transport may dial): what this host sends is encoded and counted (messages and bytes
// per channel); what arrives passes the per-peer rate limit and the decoder (messages.ts), and each
// refusal is counted by reason, before the engine (swim.ts) sees a message.

import type { Log } from '../../log/logger.ts';
import type { RefusalCounter } from '../../metrics/refusals.ts';
import type { Clock } from './clock.ts';
import { MalformedMessageError, MessageTooLargeError } from './errors.ts';
import { type Channel, decodeMessage, encodeMessage, type Message } from './messages.ts';
import { PeerRateLimiter } from './rate-limits.ts';
import { type SwimRefusalReason, type SwimStats, short } from './swim-types.ts';
import type { DatagramTransport } from './transport.ts';

export interface SwimWireComponents {
  transport: DatagramTransport;
  clock: Clock;
  log: Log;
  stats: SwimStats;
  refusals: RefusalCounter<SwimRefusalReason>;
}

export interface SwimWireInit {
  /** Messages a second one peer may send before the rest is dropped. */
  peerRate: number;
}

export class SwimWire {
  readonly #c: SwimWireComponents;
  readonly #peerRate: number;
  readonly #rate: PeerRateLimiter;

  constructor(components: SwimWireComponents, init: SwimWireInit) {
    this.#c = components;
    this.#peerRate = init.peerRate;
    this.#rate = new PeerRateLimiter({ clock: components.clock }, { peerRate: init.peerRate });
  }

  send(peer: string, msg: Message, channel: Channel): void {
    let bytes: Uint8Array;
    try {
      bytes = encodeMessage(msg, channel);
    } catch (err) {
      this.#c.log.error(`not sent to ${short(peer)}: ${(err as Error).message}`);
      return;
    }
    this.#c.stats.sent[channel].messages++;
    this.#c.stats.sent[channel].bytes += bytes.byteLength;
    this.#c.transport.send(peer, bytes, channel);
  }

  /** Where `peer` can be dialled (from its signed alive record). */
  setAddresses(peer: string, addrs: string[]): void {
    this.#c.transport.setAddresses(peer, addrs);
  }

  /** `peer` left the view: the transport forgets its addresses and streams. */
  forget(peer: string): void {
    this.#c.transport.forget(peer);
  }

  /** The message in `bytes` from `from`, or undefined when it is refused (and counted). */
  receive(from: string, bytes: Uint8Array, channel: Channel): Message | undefined {
    const { stats, refusals } = this.#c;
    stats.received[channel].messages++;
    stats.received[channel].bytes += bytes.byteLength;
    if (!this.#rate.admit(from, channel)) {
      refusals.count('rate', `${short(from)} sends more than ${this.#peerRate} messages a second`);
      return undefined;
    }
    try {
      return decodeMessage(bytes, channel);
    } catch (err) {
      if (err instanceof MessageTooLargeError || err instanceof MalformedMessageError) {
        refusals.count(err.reason, `from ${short(from)}: ${err.message}`);
        return undefined;
      }
      throw err;
    }
  }
}
