// Which hosts are alive, as this host sees it. A host proves it is alive by writing a new
// `status.heartbeatTime` into its own Host object (replicated to every host); this host notes, on its
// OWN clock, when it last saw that value change, and calls a host live while that was less than
// `timeoutMs` ago. So liveness needs no synchronised clocks: only the first sighting of a host (at
// start) trusts the writer's clock, to avoid calling a long-dead host live for a whole timeout.
// This host itself is always live. Each host computes this locally; the cluster-wide NotReady
// condition is then written by one deterministic owner (see controllers/host/controller.ts).

import type { Host } from '../model/host.ts';
import { HOST } from '../model/kinds.ts';
import type { Store } from '../store/store.ts';

export const DEFAULT_HOST_TIMEOUT_MS = 15_000;

export interface LivenessComponents {
  store: Store;
  /** Milliseconds, monotonic enough for intervals; defaults to Date.now. */
  now?: () => number;
}

export interface LivenessInit {
  self: string;
  timeoutMs?: number;
}

interface Sighting {
  heartbeat: string;
  /** Local time the heartbeat was first seen with this value. */
  seenAt: number;
}

export class HostLiveness {
  readonly self: string;
  readonly timeoutMs: number;
  readonly #store: Store;
  readonly #now: () => number;
  readonly #seen = new Map<string, Sighting>();
  #unwatch?: () => void;
  #startedAt = 0;

  constructor(components: LivenessComponents, init: LivenessInit) {
    this.#store = components.store;
    this.#now = components.now ?? Date.now;
    this.self = init.self;
    this.timeoutMs = init.timeoutMs ?? DEFAULT_HOST_TIMEOUT_MS;
  }

  start(): void {
    if (this.#unwatch) return;
    this.#startedAt = this.#now();
    const list = this.#store.list(HOST.kind);
    for (const h of list.items) this.observe(h);
    this.#unwatch = this.#store.watch(HOST.kind, { resourceVersion: list.resourceVersion }, (ev) => {
      if (ev.type === 'DELETED') this.#seen.delete(ev.object.metadata.name);
      else this.observe(ev.object);
    });
  }

  stop(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  /** Notes a Host object as read from the store (watch events call this). */
  observe(host: Host): void {
    const name = host.metadata.name;
    const heartbeat = host.status?.heartbeatTime;
    const prev = this.#seen.get(name);
    if (!heartbeat) {
      // Registered but not heartbeating yet (its status may still be on the way): one timeout of grace.
      if (!prev) this.#seen.set(name, { heartbeat: '', seenAt: this.#now() });
      return;
    }
    if (prev?.heartbeat === heartbeat) return;
    const now = this.#now();
    let seenAt = now;
    if (!prev) {
      // First sighting: trust the writer's clock, but never into the future.
      const written = Date.parse(heartbeat);
      if (!Number.isNaN(written)) seenAt = now - Math.max(0, Date.now() - written);
    }
    this.#seen.set(name, { heartbeat, seenAt });
  }

  isLive(name: string): boolean {
    if (name === this.self) return true;
    const s = this.#seen.get(name);
    return s != null && this.#now() - s.seenAt < this.timeoutMs;
  }

  /** True until this view has run for one timeout: before that, a host may look silent only because
   *  this host has not caught up yet (it just started, or replication is still bringing news). */
  get warmingUp(): boolean {
    return this.#now() - this.#startedAt < this.timeoutMs;
  }

  /** Milliseconds until `name` times out (0 when it has), for requeueing. */
  remainingMs(name: string): number {
    const s = this.#seen.get(name);
    if (!s) return 0;
    return Math.max(0, s.seenAt + this.timeoutMs - this.#now());
  }

  /** Milliseconds since `name` was last seen alive (undefined: never). */
  silentForMs(name: string): number | undefined {
    const s = this.#seen.get(name);
    return s == null ? undefined : this.#now() - s.seenAt;
  }

  /** Names of the Host objects in the store that are live now (this host included when it has one). */
  liveHosts(): string[] {
    return this.#store
      .list(HOST.kind)
      .items.map((h) => h.metadata.name)
      .filter((n) => this.isLive(n));
  }
}
