// Which hosts are alive, as this host sees it — from the membership protocol (src/p2p/membership: SWIM
// probes over the cluster's connections), never from replicated rows. A Host object names its host's peer
// id (`status.peerId`); the host is live while this host's membership holds that peer alive or suspect.
// This host itself is always live. Until this view has run for one host timeout (`warmingUp`), a host the
// membership has not heard of yet, or whose status has no peer id yet, counts as live: it may only not
// have been met yet. Without a membership (a host with no `--p2p` is a cluster of one) other hosts are
// live only while warming up. Each host computes this locally; the cluster-wide NotReady condition is
// written by one deterministic owner (controllers/host/controller.ts) after its own probe fails too.

import type { Host } from '../model/host.ts';
import { HOST } from '../model/kinds.ts';
import { objectKey } from '../reconcile/keys.ts';
import type { Store } from '../store/store.ts';

export const DEFAULT_HOST_TIMEOUT_MS = 15_000;

export type MemberState = 'alive' | 'suspect' | 'dead';

/** What liveness needs of the membership protocol (src/p2p/membership's Membership has it). */
export interface MembershipView {
  state(peerId: string): MemberState | undefined;
  onChange(listener: (change: { peer: string; state: MemberState; detail: string }) => void): () => void;
  /** This host's own probe of the peer now (direct, then through others): whether it answered. */
  confirm(peerId: string, options?: { signal?: AbortSignal }): Promise<boolean>;
}

export interface LivenessComponents {
  store: Store;
  /** The membership, once the host's p2p node runs (undefined: none, a cluster of one). */
  membership?: () => MembershipView | undefined;
  /** Milliseconds, monotonic enough for intervals; defaults to Date.now. */
  now?: () => number;
}

export interface LivenessInit {
  self: string;
  timeoutMs?: number;
}

/** How a host came to be held dead here, for the verdict's message. */
export interface Death {
  /** Local time the membership declared it dead. */
  at: number;
  detail: string;
}

export class HostLiveness {
  readonly self: string;
  readonly timeoutMs: number;
  readonly #store: Store;
  readonly #membership: () => MembershipView | undefined;
  readonly #now: () => number;
  readonly #deaths = new Map<string, Death>();
  readonly #listeners = new Set<(host: string) => void>();
  #unsubscribe?: () => void;
  #startedAt = 0;
  #started = false;

  constructor(components: LivenessComponents, init: LivenessInit) {
    this.#store = components.store;
    this.#membership = components.membership ?? (() => undefined);
    this.#now = components.now ?? Date.now;
    this.self = init.self;
    this.timeoutMs = init.timeoutMs ?? DEFAULT_HOST_TIMEOUT_MS;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#startedAt = this.#now();
    this.#unsubscribe = this.#membership()?.onChange((change) => {
      if (change.state === 'dead') this.#deaths.set(change.peer, { at: this.#now(), detail: change.detail });
      else this.#deaths.delete(change.peer);
      const host = this.#hostOf(change.peer);
      if (host) for (const listener of this.#listeners) listener(host.metadata.name);
    });
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#started = false;
  }

  /** Calls `listener(hostName)` whenever the membership changes its mind about that host. */
  onChange(listener: (host: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** What the membership holds the host to be (undefined: not met, or no peer id or membership). */
  stateOf(name: string): MemberState | undefined {
    const peer = this.#store.get(objectKey(HOST.kind, name))?.status?.peerId;
    return peer === undefined ? undefined : this.#membership()?.state(peer);
  }

  isLive(name: string): boolean {
    if (name === this.self) return true;
    const state = this.stateOf(name);
    if (state === 'alive' || state === 'suspect') return true;
    if (state === 'dead') return false;
    return this.warmingUp;
  }

  /** True until this view has run for one timeout: before that, a host may look unknown only because
   *  this host has not met it yet (it just started, or the membership is still exchanging views). */
  get warmingUp(): boolean {
    return this.#now() - this.#startedAt < this.timeoutMs;
  }

  /** Milliseconds until this view has warmed up (0 once it has), for requeueing. */
  remainingMs(): number {
    return Math.max(0, this.#startedAt + this.timeoutMs - this.#now());
  }

  /** How `name` came to be dead here, if the membership declared it dead (undefined: never met, or alive). */
  deathOf(name: string): Death | undefined {
    const peer = this.#store.get(objectKey(HOST.kind, name))?.status?.peerId;
    return peer === undefined ? undefined : this.#deaths.get(peer);
  }

  /** This host's own probe of `name` now: true when it answered. False without a membership or a peer id. */
  async answers(name: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const peer = this.#store.get(objectKey(HOST.kind, name))?.status?.peerId;
    const membership = this.#membership();
    if (peer === undefined || membership === undefined) return false;
    return membership.confirm(peer, options);
  }

  /** Names of the Host objects in the store that are live now (this host included when it has one). */
  liveHosts(): string[] {
    return this.#store
      .list(HOST.kind)
      .items.map((h) => h.metadata.name)
      .filter((n) => this.isLive(n));
  }

  /** Whether the live hosts are a strict majority of the Host objects: a side of a partition that is not
   *  may not re-bind a singleton, and a host that sees no majority stops its singleton copies. A host that
   *  is gone for good counts against the majority until its Host object is deleted. */
  quorum(): { has: boolean; live: number; known: number } {
    const known = this.#store.list(HOST.kind).items.length;
    const live = this.liveHosts().length;
    return { has: live * 2 > known, live, known };
  }

  #hostOf(peer: string): Host | undefined {
    return this.#store.list(HOST.kind).items.find((h) => h.status?.peerId === peer);
  }
}
