// The domain machines of one host, one xstate actor per ServiceInstance key (machine.ts): made when an
// instance first gets a desired domain — adopting a domain the driver already holds, never starting a
// second copy — fed each new desired domain and Manual start/stop request, asked to delete, and dropped
// once their domain is gone. Every change of an actor's snapshot calls `changed(key)` (the controller
// queues the key, so the next reconcile writes what the machine did) and each record it emits is an Event.

import { type Actor, createActor } from 'xstate';
import type { Driver } from '../../src/drivers/driver.ts';
import type { Log } from '../../src/log/logger.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import { isConditionTrue } from '../../src/reconcile/conditions.ts';
import { type DomainActorsInit, domainActors } from './actors.ts';
import { type DomainSnapshot, HEALTHY } from './conditions.ts';
import { type DomainMachine, domainMachine } from './machine.ts';
import type { DesiredDomain, DomainEmitted, MachineOptions } from './machine-types.ts';

/** Manual run strategy: set to `Running` or `Stopped` to start or stop the domain by hand. */
export const REQUESTED_STATE_ANNOTATION = 'xenos.io/requested-state';

export interface MachinesComponents {
  driver: Driver;
  log: Log;
  /** A machine's snapshot changed: reconcile its key again. */
  changed(key: string): void;
  /** A machine emitted an Event about its instance. */
  record(instance: ServiceInstance, ev: DomainEmitted): void;
  /** A machine whose domain is gone was dropped. */
  released(instance: ServiceInstance): void;
  /** Whether the domain of `key` just came here by migration (asked once when its machine is made). */
  arrived?(key: string): boolean;
}

export interface MachinesInit {
  machine?: Partial<MachineOptions>;
  actors?: DomainActorsInit;
}

interface Entry {
  actor: Actor<DomainMachine>;
  /** The instance as last seen, for Events. */
  instance: ServiceInstance;
  /** Last seen value of the requested-state annotation (Manual). */
  requested?: string;
}

export class DomainMachines {
  private readonly entries = new Map<string, Entry>();
  private readonly machine: DomainMachine;
  private readonly c: MachinesComponents;
  private readonly init: MachinesInit;

  constructor(components: MachinesComponents, init: MachinesInit) {
    this.c = components;
    this.init = init;
    this.machine = domainMachine.provide({
      actors: domainActors(components.driver, components.log, init.actors),
    });
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  snapshot(key: string): DomainSnapshot | undefined {
    return this.entries.get(key)?.actor.getSnapshot();
  }

  /** The uid of the instance the key's machine was made for. */
  uidOf(key: string): string | undefined {
    return this.entries.get(key)?.instance.metadata.uid;
  }

  /** The key's machine, made (adopting what the driver holds) when there is none; fed `desired` and the
   *  Manual request. Returns its snapshot. */
  async drive(
    key: string,
    instance: ServiceInstance,
    desired: DesiredDomain,
    signal: AbortSignal,
  ): Promise<DomainSnapshot> {
    const entry = this.entries.get(key) ?? (await this.create(key, instance, desired, signal));
    entry.instance = instance;
    const ctx = entry.actor.getSnapshot().context;
    if (
      ctx.desired.hash !== desired.hash ||
      ctx.desired.runStrategy !== desired.runStrategy ||
      ctx.desired.generation !== desired.generation
    ) {
      entry.actor.send({ type: 'SPEC', desired });
    }
    const requested = instance.metadata.annotations?.[REQUESTED_STATE_ANNOTATION];
    if (requested !== entry.requested) {
      entry.requested = requested;
      if (requested === 'Running') entry.actor.send({ type: 'START' });
      if (requested === 'Stopped') entry.actor.send({ type: 'STOP' });
    }
    return entry.actor.getSnapshot();
  }

  /**
   * The key's domain must go (instance deleted, replaced, or placed elsewhere): sends DELETE once and
   * returns the snapshot while it is tearing down; once the machine is done, drops it and returns
   * undefined (as it does when there is no machine). `instance`, when given, is the latest for Events.
   */
  release(key: string, instance?: ServiceInstance): DomainSnapshot | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (instance) entry.instance = instance;
    const snap = entry.actor.getSnapshot();
    if (snap.status !== 'done') {
      if (!snap.matches('deleting') && !snap.matches('deleteFailed')) entry.actor.send({ type: 'DELETE' });
      return entry.actor.getSnapshot();
    }
    entry.actor.stop();
    this.entries.delete(key);
    this.c.released(entry.instance);
    return undefined;
  }

  /** Drops the key's machine, leaving its domain as it is (a migration takes it over). */
  detach(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.actor.stop();
    this.entries.delete(key);
  }

  /** Stops every actor (their domains keep running: a restarted coordinator adopts them). */
  stopAll(): void {
    for (const e of this.entries.values()) e.actor.stop();
    this.entries.clear();
  }

  private async create(
    key: string,
    instance: ServiceInstance,
    desired: DesiredDomain,
    signal: AbortSignal,
  ): Promise<Entry> {
    // Adoption: a domain already there (running, or at rest) is taken over, never started twice.
    const found = await this.c.driver.inspect(desired.spec.id, { signal });
    const adopted = found && found.state !== 'prepared' && found.state !== 'unknown' ? found : undefined;
    const status = instance.status;
    // The running domain was built from the current generation unless the spec changed while no
    // controller watched, or the template's image changed.
    // A domain that just came by migration was built here from the current spec (its status was
    // cleared by the rebinding): adopted as it is, never restarted.
    const current =
      this.c.arrived?.(key) === true ||
      (status?.observedGeneration === desired.generation &&
        (!found?.imageDigest ||
          !desired.spec.image.digest ||
          found.imageDigest === desired.spec.image.digest));
    const requested = instance.metadata.annotations?.[REQUESTED_STATE_ANNOTATION];
    const actor = createActor(this.machine, {
      input: {
        desired,
        adopted,
        adoptedHash: adopted && !current ? 'stale' : undefined,
        adoptedReady: current && isConditionTrue(status, HEALTHY),
        restarts: status?.restarts ?? 0,
        manualRunning: requested !== 'Stopped',
        options: this.init.machine,
      },
    });
    const entry: Entry = { actor, instance, requested };
    this.entries.set(key, entry);
    actor.on('record', (ev) => this.c.record(entry.instance, ev));
    actor.subscribe({
      next: () => this.c.changed(key),
      error: (err) => this.c.log.error({ err: err }, `domain machine of ${key} failed`),
    });
    actor.start();
    return entry;
  }
}
