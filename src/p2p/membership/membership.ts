// Membership of one host over its libp2p node: the SWIM engine (swim.ts) on the libp2p transport
// (libp2p-transport.ts), told about peers as they connect. A peer that connects and is not known alive
// gets a full-state exchange at once — that is how a new host joins and how the two sides of a healed
// partition learn of each other — and every other change travels on the protocol's own messages.
//
//   const membership = new Membership({ node, signer, log }, { hostTimeoutMs: 15_000 });
//   await membership.start();              // after node.start()
//   membership.onChange((c) => ...);       // { peer, state: alive|suspect|dead, previous, detail }
//   membership.isLive(peerId);             // alive or suspect, as this host sees it
//   await membership.confirm(peerId);      // this host's own probe now: false = no ack, direct or relayed
//   await membership.stop();               // before node.stop()

import type { Log } from '../../log/logger.ts';
import type { PeerSigner } from '../peer-signature.ts';
import type { Clock } from './clock.ts';
import { Libp2pDatagramTransport, type MembershipNode } from './libp2p-transport.ts';
import type { MemberState } from './messages.ts';
import { Swim } from './swim.ts';
import type { MemberChange, MemberView } from './swim-types.ts';
import { type SwimTiming, timingFor } from './timing.ts';

export interface MembershipComponents {
  node: MembershipNode & EventTarget & { readonly multiaddrs: string[] };
  signer: PeerSigner;
  log?: Log;
  clock?: Clock;
}

export interface MembershipInit {
  /** `--host-timeout`: every period derives from it (timing.ts). Default 15 s. */
  hostTimeoutMs?: number;
  /** Overrides the derived timing (tests). */
  timing?: SwimTiming;
  incarnation?: number;
}

export class Membership {
  readonly swim: Swim;
  readonly transport: Libp2pDatagramTransport;
  readonly #node: MembershipComponents['node'];
  readonly #onConnect = (evt: Event): void => {
    const peer = String((evt as CustomEvent<string>).detail);
    if (this.swim.member(peer)?.state !== 'alive') this.swim.join(peer);
  };
  #started = false;

  constructor(components: MembershipComponents, init: MembershipInit = {}) {
    this.#node = components.node;
    this.transport = new Libp2pDatagramTransport({ node: components.node, log: components.log });
    this.swim = new Swim(
      {
        transport: this.transport,
        signer: components.signer,
        clock: components.clock,
        log: components.log,
      },
      { timing: init.timing ?? timingFor(init.hostTimeoutMs), incarnation: init.incarnation },
    );
  }

  get self(): string {
    return this.swim.self;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.transport.start();
    this.swim.setAddresses(this.#node.multiaddrs);
    this.swim.start();
    this.#node.addEventListener('peer:connect', this.#onConnect);
    for (const peer of this.#node.connectedPeers()) this.swim.join(peer);
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.#node.removeEventListener('peer:connect', this.#onConnect);
    this.swim.stop();
    await this.transport.stop();
  }

  onChange(listener: (change: MemberChange) => void): () => void {
    const handler = (evt: Event): void => listener((evt as CustomEvent<MemberChange>).detail);
    this.swim.addEventListener('change', handler);
    return () => this.swim.removeEventListener('change', handler);
  }

  state(peer: string): MemberState | undefined {
    return peer === this.self ? 'alive' : this.swim.member(peer)?.state;
  }

  /** Alive or suspect (a suspect is live until it is declared dead). */
  isLive(peer: string): boolean {
    const s = this.state(peer);
    return s === 'alive' || s === 'suspect';
  }

  member(peer: string): MemberView | undefined {
    return this.swim.member(peer);
  }

  members(): MemberView[] {
    return this.swim.members();
  }

  /** This host's own probe of `peer` now (direct, then through k members): whether it answered. */
  confirm(peer: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const onAbort = (): void => reject(options.signal!.reason);
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.swim.probe(peer, (ok) => {
        options.signal?.removeEventListener('abort', onAbort);
        resolve(ok);
      });
    });
  }
}
