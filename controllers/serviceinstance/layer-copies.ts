// Copies of this host's instances' disk layers, for failover (spec.failover.copyEverySeconds), and the
// copies this host keeps of other hosts' instances. Every running instance that asks for copies has its
// driver write one (Driver.copyLayer: taken while the domain runs) every copyEverySeconds to the host
// failover would pick if this host died now (src/cluster/failover.ts: placement's choice, within a
// deployment's spread), so the copy is where the instance will go — over /xenos/layer-copy/1.0.0 (src/cluster/layer-copies/). Its status
// says where the last copy is (status.layerCopy), and failover prefers that host. On the keeping host a
// failed-over instance's domain is made from the copy (DomainSpec.fromCopy) and FailedOver says
// StartedFromCopy. One copy at a time leaves this host; copies that will not be used again (instance gone
// or started, a newer copy elsewhere, failed over to another host) are dropped.

import type { Writable } from 'node:stream';
import { failoverEpoch, failoverOf, failoverPlan } from '../../src/cluster/failover.ts';
import {
  type CopyHeader,
  LayerCopyError,
  sendLayerCopy,
} from '../../src/cluster/layer-copies/copy-protocol.ts';
import type { HeldCopy, LayerCopyStore } from '../../src/cluster/layer-copies/copy-store.ts';
import type { Placement } from '../../src/cluster/placement.ts';
import type { Driver, LayerCopySource } from '../../src/drivers/driver.ts';
import type { Log } from '../../src/log/logger.ts';
import { HOST, SERVICE_INSTANCE } from '../../src/model/kinds.ts';
import type { LayerCopyStatus, ServiceInstance } from '../../src/model/service-instance.ts';
import type { ProtocolNode } from '../../src/p2p/protocol-node.ts';
import { keyOf } from '../../src/reconcile/keys.ts';
import { Informer } from '../../src/store/informer.ts';
import type { Store } from '../../src/store/store.ts';
import { domainIdOf, instanceRef } from './domain-spec.ts';

/** What the instance reconcile asks of the copies (reconcile-steps.ts). */
export interface InstanceLayerCopies {
  /** The copy this host keeps that `instance`'s domain should be made from here: it failed over to this
   *  host after the copy was taken. */
  restorable(instance: ServiceInstance): LayerCopySource | undefined;
  /** How the last copy of `instance` this host sent went. */
  lastSent(instance: ServiceInstance): { copy?: LayerCopyStatus; error?: string } | undefined;
}

export interface LayerCopiesComponents {
  store: Store;
  driver: Driver;
  copies: LayerCopyStore;
  placement: Pick<Placement, 'decide'>;
  node: ProtocolNode;
  /** Queues an instance's reconcile, which writes its status. */
  enqueue(key: string): void;
  log: Log;
}

export interface LayerCopiesInit {
  hostName: string;
  /** How often it looks for copies due while this host has instances that ask for copies or keeps
   *  copies of others'. Default 1 s. */
  tickMs?: number;
  /** How often otherwise (a change to an instance brings the next look forward). Default 10 s. */
  idleTickMs?: number;
  /** How often kept copies are checked for use. Default 30 s. */
  pruneEveryMs?: number;
}

interface Sent {
  copy?: LayerCopyStatus;
  error?: string;
  /** When the last try began (ms): the next is due copyEverySeconds after it. */
  triedAt: number;
}

export class LayerCopies implements InstanceLayerCopies {
  readonly #c: LayerCopiesComponents;
  readonly #init: Required<LayerCopiesInit>;
  readonly #instances: Informer<typeof SERVICE_INSTANCE.kind>;
  readonly #sent = new Map<string, Sent>();
  #timer?: NodeJS.Timeout;
  /** When the next look is due (ms). */
  #dueAt = 0;
  #unsubscribe?: () => void;
  #abort = new AbortController();
  #busy = false;
  #prunedAt = 0;

  constructor(components: LayerCopiesComponents, init: LayerCopiesInit) {
    this.#c = components;
    this.#init = { tickMs: 1000, idleTickMs: 10_000, pruneEveryMs: 30_000, ...init };
    this.#instances = new Informer({ store: components.store }, { kind: SERVICE_INSTANCE.kind });
  }

  start(): void {
    if (this.#unsubscribe) return;
    this.#abort = new AbortController();
    this.#instances.start();
    // An instance that changed may now ask for a copy (or make a kept one useless): look soon.
    this.#unsubscribe = this.#instances.onChange(() => {
      if (this.#dueAt - Date.now() > this.#init.tickMs) this.#next(this.#init.tickMs);
    });
    this.#next(this.#init.tickMs);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#abort.abort(new Error('this host stopped copying'));
    this.#instances.stop();
  }

  /** The next look in `ms`; after it, at the busy or the idle pace, whichever this host needs then. */
  #next(ms: number): void {
    clearTimeout(this.#timer);
    this.#dueAt = Date.now() + ms;
    this.#timer = setTimeout(async () => {
      await this.tick().catch((err) => this.#c.log.warn({ err }, `layer copies: ${err.message}`));
      if (this.#unsubscribe) this.#next(this.#needsLooks() ? this.#init.tickMs : this.#init.idleTickMs);
    }, ms);
    this.#timer.unref();
  }

  /** This host runs an instance that asks for copies, or keeps a copy of another host's. */
  #needsLooks(): boolean {
    if (this.#c.copies.list().length > 0) return true;
    const self = this.#init.hostName;
    for (const i of this.#instances.values())
      if (i.spec?.host === self && failoverOf(this.#c.store, i)?.copyEverySeconds) return true;
    return false;
  }

  restorable(instance: ServiceInstance): LayerCopySource | undefined {
    const held = this.#c.copies.get(instance.metadata.uid ?? '');
    if (!held || !this.#c.driver.copyLayer || held.driver !== this.#c.driver.name) return undefined;
    if (instance.spec?.host !== this.#init.hostName || held.epoch >= failoverEpoch(instance))
      return undefined;
    return { path: held.path, host: held.host, takenAt: held.takenAt };
  }

  lastSent(instance: ServiceInstance): Sent | undefined {
    return this.#sent.get(instance.metadata.uid ?? '');
  }

  /** One round: the copies due, one after another; now and then, the kept copies no longer of use. */
  async tick(now = Date.now()): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const due = [...this.#instances.values()].filter((i) => this.#due(i, now));
      if (due.length > 0) {
        // Where each would go if this host died now, all of this host's together (failoverPlan).
        const self = this.#init.hostName;
        const mine = [...this.#instances.values()].filter((i) => i.spec?.host === self);
        const plan = failoverPlan(this.#c, self, mine);
        for (const instance of due) {
          if (this.#abort.signal.aborted) return;
          await this.#copy(instance, plan.get(instance.metadata.uid ?? ''));
        }
      }
      if (now - this.#prunedAt >= this.#init.pruneEveryMs) {
        this.#prunedAt = now;
        await this.prune();
      }
    } finally {
      this.#busy = false;
    }
  }

  /** Whether a copy of `instance` is due from this host now: it runs here and asks for copies, and the
   *  last try (or, after a restart, the last copy its status shows) is copyEverySeconds old. */
  #due(instance: ServiceInstance, now: number): boolean {
    const self = this.#init.hostName;
    const status = instance.status;
    if (instance.spec?.host !== self || status?.host !== self || instance.metadata.deletionTimestamp)
      return false;
    if (!status.startedAt || !this.#c.driver.copyLayer) return false;
    const every = failoverOf(this.#c.store, instance)?.copyEverySeconds;
    if (!every) return false;
    const last =
      this.#sent.get(instance.metadata.uid ?? '')?.triedAt ?? Date.parse(status.layerCopy?.takenAt ?? '');
    return Number.isNaN(last) || now - last >= every * 1000;
  }

  async #copy(
    instance: ServiceInstance,
    choice: { host: string } | { message: string } | undefined,
  ): Promise<void> {
    const uid = instance.metadata.uid ?? '';
    const key = keyOf(instance);
    const sent: Sent = { ...this.#sent.get(uid), triedAt: Date.now() };
    this.#sent.set(uid, sent);
    const before = JSON.stringify([sent.copy?.host, sent.error]);
    try {
      if (!choice) throw new LayerCopyError('it does not fail over');
      if (!('host' in choice)) throw new LayerCopyError(`no host to keep it: ${choice.message}`);
      const keeper = choice.host;
      const peer = this.#c.store.get({ kind: HOST.kind, namespace: '', name: keeper })?.status?.peerId;
      if (!peer) throw new LayerCopyError(`host ${keeper} has no peer id yet`);
      const takenAt = new Date().toISOString();
      const header: CopyHeader = {
        namespace: instance.metadata.namespace ?? 'default',
        name: instance.metadata.name,
        uid,
        epoch: failoverEpoch(instance),
        takenAt,
        driver: this.#c.driver.name,
      };
      const id = domainIdOf(instance);
      const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(10 * 60_000)]);
      const bytes = await sendLayerCopy(
        this.#c.node,
        peer,
        header,
        (out: Writable) => this.#c.driver.copyLayer!(id, out, { signal }),
        signal,
      );
      sent.copy = { host: keeper, takenAt, bytes };
      delete sent.error;
      this.#c.log.debug(
        { instance: key, host: keeper, bytes },
        `${instanceRef(instance)}: copy kept on ${keeper}`,
      );
    } catch (err) {
      if (this.#abort.signal.aborted) return;
      sent.error = `copying its disk layer failed: ${(err as Error).message}`;
      if (JSON.stringify([sent.copy?.host, sent.error]) !== before)
        this.#c.log.warn({ err, instance: key }, `${instanceRef(instance)}: ${sent.error}`);
    }
    this.#c.enqueue(key);
  }

  /** The host that may send this copy from `peer` (LayerCopyReceiver's check): the instance exists with
   *  this uid, asks for copies, is bound to another host whose key is `peer`, at the header's epoch. */
  authorize(header: CopyHeader, peer: string): string {
    const instance = this.#c.store.get({
      kind: SERVICE_INSTANCE.kind,
      namespace: header.namespace,
      name: header.name,
    });
    const what = `ServiceInstance ${header.namespace}/${header.name}`;
    if (!instance || instance.metadata.uid !== header.uid)
      throw new LayerCopyError(`${what} (uid ${header.uid}) is not in this host's store`);
    if (!failoverOf(this.#c.store, instance)?.copyEverySeconds)
      throw new LayerCopyError(`${what} asks for no copies (failover.copyEverySeconds)`);
    const host = instance.spec?.host;
    if (!host || host === this.#init.hostName)
      throw new LayerCopyError(`${what} is not bound to another host`);
    if (this.#c.store.get({ kind: HOST.kind, namespace: '', name: host })?.status?.peerId !== peer)
      throw new LayerCopyError(`${what} is bound to host ${host}, and peer ${peer} is not its key`);
    if (failoverEpoch(instance) !== header.epoch)
      throw new LayerCopyError(
        `${what} is at failover epoch ${failoverEpoch(instance)}, not ${header.epoch}`,
      );
    return host;
  }

  /** Drops the kept copies nobody will start from. */
  async prune(): Promise<void> {
    for (const held of this.#c.copies.list()) {
      const why = this.#useless(held);
      if (!why) continue;
      await this.#c.copies.remove(held.uid);
      this.#c.log.info(
        { instance: `${held.namespace}/${held.name}` },
        `dropped the copy of ServiceInstance ${held.namespace}/${held.name} taken on ${held.host}: ${why}`,
      );
    }
  }

  #useless(held: HeldCopy): string | undefined {
    const self = this.#init.hostName;
    const instance = this.#instances.get(`${held.namespace}/${held.name}`);
    if (!instance || instance.metadata.uid !== held.uid) return 'the instance is gone';
    if (!failoverOf(this.#c.store, instance)?.copyEverySeconds) return 'it no longer asks for copies';
    const status = instance.status;
    if (instance.spec?.host === self) {
      // Failed over here: kept until the domain was made (from it, or it could not be).
      return status?.host === self && status.disk ? 'its domain was made here' : undefined;
    }
    if (failoverEpoch(instance) > held.epoch) return `it failed over to ${instance.spec?.host ?? 'no host'}`;
    const newer = status?.layerCopy;
    if (newer && newer.host !== self && Date.parse(newer.takenAt) > Date.parse(held.takenAt))
      return `a newer copy is on ${newer.host}`;
    return undefined;
  }
}
