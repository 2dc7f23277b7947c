// Test helpers for membership over real libp2p nodes in one process: a host's signer from its data dir,
// a Swim on each node (optionally behind a transport decorator that delays or cuts messages, to make a
// host slow or partitioned while libp2p underneath stays real), and views across hosts.

import { join } from 'node:path';
import { Libp2pDatagramTransport } from '../../../src/p2p/membership/libp2p-transport.ts';
import type { Channel } from '../../../src/p2p/membership/messages.ts';
import { Swim } from '../../../src/p2p/membership/swim.ts';
import type { SwimTiming } from '../../../src/p2p/membership/timing.ts';
import type { DatagramTransport, MessageHandler } from '../../../src/p2p/membership/transport.ts';
import { loadOrCreatePeerKey, PEER_KEY_FILE } from '../../../src/p2p/peer-key.ts';
import { type PeerSigner, peerSigner } from '../../../src/p2p/peer-signature.ts';
import type { TestHost } from '../cluster.ts';

export async function signerOf(host: TestHost): Promise<PeerSigner> {
  const { privateKey } = await loadOrCreatePeerKey(join(host.dataDir, PEER_KEY_FILE));
  return peerSigner(privateKey, host.node.peerId.toString());
}

/** Wraps a transport: incoming messages can be delayed (a slow host) or dropped by sender (a cut). */
export class FaultyTransport implements DatagramTransport {
  delayMs = 0;
  readonly cut = new Set<string>();
  readonly #inner: DatagramTransport;
  #timers = new Set<NodeJS.Timeout>();

  constructor(inner: DatagramTransport) {
    this.#inner = inner;
  }

  get self(): string {
    return this.#inner.self;
  }

  send(peer: string, bytes: Uint8Array, channel: Channel): void {
    if (!this.cut.has(peer)) this.#inner.send(peer, bytes, channel);
  }

  setAddresses(peer: string, addrs: string[]): void {
    this.#inner.setAddresses(peer, addrs);
  }

  forget(peer: string): void {
    this.#inner.forget(peer);
  }

  onMessage(handler: MessageHandler): void {
    this.#inner.onMessage((from, bytes, channel) => {
      if (this.cut.has(from)) return;
      if (this.delayMs <= 0) return handler(from, bytes, channel);
      const t = setTimeout(() => {
        this.#timers.delete(t);
        handler(from, bytes, channel);
      }, this.delayMs);
      this.#timers.add(t);
    });
  }

  start(): Promise<void> {
    return this.#inner.start();
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    await this.#inner.stop();
  }
}

export interface SwimHost {
  host: TestHost;
  swim: Swim;
  transport: FaultyTransport;
}

/** A Swim on each host over its real libp2p node; each joins the first host. */
export async function startSwims(hosts: TestHost[], timing: SwimTiming): Promise<SwimHost[]> {
  const out: SwimHost[] = [];
  for (const host of hosts) {
    const transport = new FaultyTransport(new Libp2pDatagramTransport({ node: host.node }));
    const swim = new Swim(
      { transport, signer: await signerOf(host) },
      { timing, addrs: host.node.multiaddrs },
    );
    await transport.start();
    swim.start();
    out.push({ host, swim, transport });
  }
  for (const s of out.slice(1)) s.swim.join(out[0].swim.self);
  return out;
}

export async function stopSwims(swims: SwimHost[]): Promise<void> {
  for (const s of swims) {
    s.swim.stop();
    await s.transport.stop();
  }
}

/** What every observer in `observers` holds `peer` to be. */
export function statesOf(observers: SwimHost[], peer: string): (string | undefined)[] {
  return observers.map((o) => o.swim.member(peer)?.state);
}

/** Every host knows every other as alive. */
export function allAlive(swims: SwimHost[]): boolean {
  return swims.every((s) => swims.every((o) => o === s || s.swim.member(o.swim.self)?.state === 'alive'));
}
