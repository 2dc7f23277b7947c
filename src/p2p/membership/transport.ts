// What the membership protocol needs of a network: datagram-like messages to a peer on two channels (the
// small probe channel and the bulk sync channel), delivered at most once, maybe not at all, to a handler
// that learns the authenticated sender. SWIM is built for lost messages, so `send` never waits and never
// throws for a peer it cannot reach. The libp2p transport (libp2p-transport.ts) and the in-memory network
// the simulation and unit tests use (memory-transport.ts) both pass test/p2p/membership/transport-contract.ts.

import type { Channel } from './messages.ts';

export type MessageHandler = (from: string, bytes: Uint8Array, channel: Channel) => void;

export interface DatagramTransport {
  /** This host's peer id. */
  readonly self: string;
  /** Queues one message for `peer`; lost (silently) when the peer cannot be reached. */
  send(peer: string, bytes: Uint8Array, channel: Channel): void;
  /** Where a peer that is not connected can be dialled (from its signed alive record). */
  setAddresses(peer: string, addrs: string[]): void;
  /** Forget a peer (it left the view): its addresses and any open stream to it. */
  forget(peer: string): void;
  onMessage(handler: MessageHandler): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}
