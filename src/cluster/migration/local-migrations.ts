// Which instances of this host are moving now, the one place both controllers of a migration consult:
// the ServiceInstance controller leaves a protected instance's domain alone (the source does not restart
// the copy it stopped or paused, the target neither starts a fresh domain nor takes the arriving one for
// an orphan), and the ServiceMigration controller marks an instance while it moves it and ends the mark
// when it is done (the instance is then reconciled again, adopting what is there). What is in memory
// dies with xenosd; the store tells the rest after a restart: a Running migration this host was the
// source of, not yet committed (the instance still bound here), or the target of, not yet bound here,
// protects the instance until the migration controller settles it.

import type { DomainSpec } from '../../drivers/driver.ts';
import { SERVICE_MIGRATION } from '../../model/kinds.ts';
import type { ServiceInstance } from '../../model/service-instance.ts';
import type { ServiceMigration } from '../../model/service-migration.ts';
import { keyOf } from '../../reconcile/keys.ts';
import type { Store } from '../../store/store.ts';

/** What the ServiceMigration controller needs of the ServiceInstance controller of its host (the daemon
 *  wires one to the other: controllers never import each other). */
export interface InstanceHooks {
  /** The domain this host runs for `instance` (its template's image must be here). */
  domainFor(instance: ServiceInstance, signal: AbortSignal): Promise<DomainSpec>;
  /** Starts getting the template's image here if this host lacks it; whether it is here now. */
  imageHere(instance: ServiceInstance, signal: AbortSignal): Promise<{ here: boolean; error?: Error }>;
  /** Lets go of the instance's domain machine without touching the domain. */
  detach(key: string): void;
  /** Reconciles the instance again (its machine adopts what the driver holds). */
  requeue(key: string): void;
  /** The instance left this host: what this host issued for it (its notice-board token) goes. */
  forget(instance: ServiceInstance): void;
}

type Direction = 'out' | 'in';

/** What the instance's own status says while it moves. */
export interface MoveNote {
  mode: 'live' | 'cold';
  /** The other host. */
  peer: string;
}

export class LocalMigrations {
  readonly #store: Store;
  readonly #hostName: string;
  readonly #moving = new Map<string, { direction: Direction; uid: string; note?: MoveNote }>();
  readonly #arrived = new Set<string>();
  #hooks: InstanceHooks | undefined;

  constructor(components: { store: Store }, init: { hostName: string }) {
    this.#store = components.store;
    this.#hostName = init.hostName;
  }

  /** The ServiceInstance controller of this host registers itself. */
  setHooks(hooks: InstanceHooks): void {
    this.#hooks = hooks;
  }

  get hooks(): InstanceHooks {
    if (!this.#hooks)
      throw new Error('no ServiceInstance controller is wired to the migrations of this host');
    return this.#hooks;
  }

  /** Marks `key` as moving (out of or into this host) for migration `uid`; false if it already moves.
   *  The instance is reconciled again (its status says it moves). */
  begin(key: string, direction: Direction, uid: string, note?: MoveNote): boolean {
    const now = this.#moving.get(key);
    if (now && now.uid !== uid) return false;
    this.#moving.set(key, { direction, uid, note });
    if (direction === 'out') this.#hooks?.detach(key);
    this.#hooks?.requeue(key);
    return true;
  }

  /** How `key` moves out of this host, while it does. */
  leaving(key: string): MoveNote | undefined {
    const m = this.#moving.get(key);
    return m?.direction === 'out' ? m.note : undefined;
  }

  /** Ends the mark; `arrived`: the domain here now came by migration, built from the current spec (its
   *  machine adopts it as current, never restarting it). The instance is reconciled again. */
  end(key: string, options: { arrived?: boolean } = {}): void {
    this.#moving.delete(key);
    if (options.arrived) this.#arrived.add(key);
    this.#hooks?.requeue(key);
  }

  moving(key: string): Direction | undefined {
    return this.#moving.get(key)?.direction;
  }

  /** Whether the domain of `key` came by migration (asked once, by the machine that adopts it). */
  takeArrived(key: string): boolean {
    return this.#arrived.delete(key);
  }

  /** Whether the ServiceInstance controller must leave this instance's domain alone now. */
  protects(instance: ServiceInstance): boolean {
    const key = keyOf(instance);
    if (this.#moving.has(key)) return true;
    const bound = instance.spec?.host;
    return this.#unsettled(instance).some((m) =>
      m.status?.sourceHost === this.#hostName ? bound === this.#hostName : bound !== this.#hostName,
    );
  }

  /** Running migrations of `instance` this host is the source or the target of. */
  #unsettled(instance: ServiceInstance): ServiceMigration[] {
    const namespace = instance.metadata.namespace ?? 'default';
    return this.#store
      .list(SERVICE_MIGRATION.kind, { namespace })
      .items.filter(
        (m) =>
          m.spec?.instanceRef?.name === instance.metadata.name &&
          m.status?.phase === 'Running' &&
          (m.status.sourceHost === this.#hostName || m.status.targetHost === this.#hostName),
      );
  }
}
