// The ServiceInstance controller of one host. Level-triggered: `reconcile(key)` re-reads the instance,
// its template and the domain as the driver sees it, takes one step toward agreement and writes status.
// Each instance placed on this host gets one domain machine (machine.ts); the controller feeds it the
// desired domain and turns its snapshot into status and its emitted records into Events.
//
// The skeleton of a reconcile:
//   1. gone from the store → tear the domain down, forget it;
//   2. not placed → place it here (single host; the cluster issue replaces this with placement);
//      placed elsewhere → if a domain of it is here, tear it down;
//   3. being deleted → stop and destroy the domain, then remove the `xenos.io/domain` finalizer;
//   4. ensure the finalizer; template present and its image on this host (else TemplateReady=False,
//      requeue); parameters valid (else terminal: Stalled);
//   5. get or create the machine (adopting a running domain: no second copy), send it the spec;
//   6. write status once from the machine's snapshot.
// On start, domains the driver lists whose instance no longer exists (or lives elsewhere) are torn down.

import { type Actor, createActor } from 'xstate';
import type { RecordEventOptions } from '../../src/api/events.ts';
import { recordEvent } from '../../src/api/events.ts';
import type { DomainInfo, Driver } from '../../src/drivers/driver.ts';
import { cachedImage } from '../../src/images/import-image.ts';
import { type Log, silentLogger } from '../../src/log/logger.ts';
import { HOST, SERVICE_INSTANCE, SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import type { ServiceInstance, ServiceInstanceStatus } from '../../src/model/service-instance.ts';
import type { ServiceTemplate } from '../../src/model/service-template.ts';
import {
  isConditionTrue,
  markStalled,
  removeCondition,
  STALLED,
  setCondition,
} from '../../src/reconcile/conditions.ts';
import { Controller, type ReconcileResult } from '../../src/reconcile/controller.ts';
import { TerminalError } from '../../src/reconcile/errors.ts';
import { keyOf, objectKey } from '../../src/reconcile/keys.ts';
import type { RateLimiter } from '../../src/reconcile/rate-limiter.ts';
import { updateStatus } from '../../src/reconcile/status.ts';
import type { Store } from '../../src/store/store.ts';
import { type DomainActorsInit, domainActors, teardownDomain } from './actors.ts';
import {
  applySnapshot,
  type DomainSnapshot,
  HEALTHY,
  SCHEDULED,
  summariseInstance,
  TEMPLATE_READY,
} from './conditions.ts';
import type { InstanceCredentials } from './credentials.ts';
import { buildDesiredDomain, domainIdOf, identityOf, instanceRef } from './domain-spec.ts';
import { type DesiredDomain, type DomainMachine, domainMachine, type MachineOptions } from './machine.ts';

export const DOMAIN_FINALIZER = 'xenos.io/domain';
/** Manual run strategy: set to `Running` or `Stopped` to start or stop the domain by hand. */
export const REQUESTED_STATE_ANNOTATION = 'xenos.io/requested-state';

/** Where this host keeps imported template images (src/images' content-addressed cache). */
export interface LocalImages {
  /** The local path of the image with this digest, or undefined when this host does not hold it. */
  locate(digest: string, options?: { signal?: AbortSignal }): Promise<string | undefined>;
}

/** The LocalImages of src/images' cache directory (what the ServiceTemplate controller imports into). */
export function imageCache(cacheDir: string): LocalImages {
  return { locate: async (digest) => (await cachedImage(cacheDir, digest))?.path };
}

export interface ServiceInstanceControllerComponents {
  store: Store;
  /** The host's driver (the daemon's selection). */
  driver: Driver;
  images: LocalImages;
  /** Hands each domain its notice-board token (a file named by XENOS_TOKEN_FILE); without it, none. */
  credentials?: InstanceCredentials;
  log?: Log;
}

export interface ServiceInstanceControllerInit {
  hostName: string;
  /** Place every unplaced instance on this host (one host, no placement). Default true; a daemon whose
   *  cluster placement writes spec.host sets false, and unplaced instances are then left alone. */
  placeUnplaced?: boolean;
  /** The API base URL services inside domains reach their host at (XENOS_API). */
  apiUrl?: string;
  /** Reconciles run at once. Default 8: a reconcile mostly waits (image lookup, the driver's inspect),
   *  so two workers left most instances of a burst queued behind those waits. */
  workers?: number;
  resyncMs?: number;
  /** Re-check an instance whose template is missing or not ready this often. Default 10 s. */
  templateRetryMs?: number;
  machine?: Partial<MachineOptions>;
  actors?: DomainActorsInit;
  rateLimiter?: RateLimiter;
}

interface Entry {
  actor: Actor<DomainMachine>;
  /** The instance as last seen, for Events. */
  instance: ServiceInstance;
  /** Last seen value of the requested-state annotation (Manual). */
  requested?: string;
}

const COMPONENT = 'serviceinstance-controller';
const DEFAULT_WORKERS = 8;

function spec(instance: ServiceInstance) {
  return instance.spec ?? ({ templateRef: { name: '' } } as NonNullable<ServiceInstance['spec']>);
}

export class ServiceInstanceController {
  private readonly store: Store;
  private readonly driver: Driver;
  private readonly images: LocalImages;
  private readonly credentials?: InstanceCredentials;
  private readonly log: Log;
  private readonly init: ServiceInstanceControllerInit;
  private readonly runner: Controller<typeof SERVICE_INSTANCE.kind>;
  private readonly machines = new Map<string, Entry>();
  private readonly machine: DomainMachine;
  private abort?: AbortController;
  private sweep?: Promise<void>;

  constructor(components: ServiceInstanceControllerComponents, init: ServiceInstanceControllerInit) {
    this.store = components.store;
    this.driver = components.driver;
    this.images = components.images;
    this.credentials = components.credentials;
    this.log = components.log ?? silentLogger.root;
    this.init = init;
    this.machine = domainMachine.provide({ actors: domainActors(this.driver, this.log, init.actors) });
    this.runner = new Controller(
      { store: this.store, log: this.log },
      {
        name: 'serviceinstance',
        kind: SERVICE_INSTANCE.kind,
        workers: init.workers ?? DEFAULT_WORKERS,
        resyncMs: init.resyncMs,
        rateLimiter: init.rateLimiter,
        reconcile: (key, opts) => this.reconcile(key, opts),
        onTerminal: (key, err) => this.stalled(key, err),
        filter: (obj) => this.concerns(obj),
        watches: [{ kind: SERVICE_TEMPLATE.kind, map: (t) => this.instancesOf(t) }],
      },
    );
  }

  start(): void {
    if (this.abort) return;
    this.abort = new AbortController();
    this.runner.start();
    this.sweep = this.sweepOrphans(this.abort.signal).catch((err) => {
      if (!this.abort?.signal.aborted) this.log.error({ err: err }, 'sweeping orphaned domains failed');
    });
  }

  /** Stops reconciling. Domains keep running (a restarted coordinator adopts them). */
  async stop(): Promise<void> {
    if (!this.abort) return;
    this.abort.abort(new Error('serviceinstance controller stopped'));
    await this.runner.stop();
    await this.sweep;
    for (const e of this.machines.values()) e.actor.stop();
    this.machines.clear();
    this.abort = undefined;
  }

  /** For tests and the daemon's debug output: the machine snapshot of an instance key. */
  snapshot(key: string): DomainSnapshot | undefined {
    return this.machines.get(key)?.actor.getSnapshot();
  }

  private concerns(instance: ServiceInstance): boolean {
    const host = instance.spec?.host;
    if (host === this.init.hostName || this.machines.has(keyOf(instance))) return true;
    if (this.orphanedFinalizer(instance)) return true;
    return !host && this.init.placeUnplaced !== false;
  }

  /** Deleted, with our finalizer, and no host that could remove it: unplaced, or placed on a host that
   *  is not a member (no Host object). A member host removes its own; one that died is failover's. */
  private orphanedFinalizer(instance: ServiceInstance): boolean {
    if (!instance.metadata.deletionTimestamp || !instance.metadata.finalizers?.includes(DOMAIN_FINALIZER)) {
      return false;
    }
    const host = instance.spec?.host;
    return !host || !this.store.get({ kind: HOST.kind, namespace: '', name: host });
  }

  private instancesOf(template: ServiceTemplate): string[] {
    return this.store
      .list(SERVICE_INSTANCE.kind, { namespace: template.metadata.namespace ?? 'default' })
      .items.filter((i) => i.spec?.templateRef?.name === template.metadata.name)
      .filter((i) => this.concerns(i))
      .map(keyOf);
  }

  private event(
    instance: ServiceInstance,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): void {
    const opts: RecordEventOptions = { component: COMPONENT, host: this.init.hostName };
    try {
      recordEvent(this.store, instance, type, reason, message, opts);
    } catch (err) {
      this.log.warn({ err: err }, `recording event ${reason} for ${instanceRef(instance)} failed`);
    }
  }

  // ------------------------------------------------------------------------------------------------
  // reconcile

  async reconcile(key: string, { signal }: { signal: AbortSignal }): Promise<ReconcileResult | undefined> {
    let instance = this.store.get(objectKey(SERVICE_INSTANCE.kind, key));
    if (!instance) return this.forget(key);

    const host = spec(instance).host;
    if (host !== this.init.hostName) {
      // Not (or no longer) ours: nothing of it may stay here.
      if (this.machines.has(key)) {
        this.forget(key);
        // Still tearing down: the machine's end brings the key back. Gone now: go on at once, as no
        // other change may come to bring it back (a deletion seen while the machine ended).
        if (this.machines.has(key)) return undefined;
      }
      if (this.orphanedFinalizer(instance)) return this.removeFinalizer(key);
      if (!host && !instance.metadata.deletionTimestamp && this.init.placeUnplaced !== false) {
        return this.place(instance);
      }
      return undefined;
    }

    if (instance.metadata.deletionTimestamp) return this.finalize(key, instance, signal);
    if (!instance.metadata.finalizers?.includes(DOMAIN_FINALIZER)) {
      // Go on with the written object in this same pass: waiting for the watch to bring the key back
      // would put the instance behind every other queued key before its domain is even prepared.
      instance = this.store.update({
        ...instance,
        metadata: {
          ...instance.metadata,
          finalizers: [...(instance.metadata.finalizers ?? []), DOMAIN_FINALIZER],
        },
      });
    }

    // Deleted and created again under the same name while we looked away: the old domain goes first
    // (its machine's end brings the key back).
    const previous = this.machines.get(key);
    if (previous && previous.instance.metadata.uid !== instance.metadata.uid) return this.forget(key);

    const wanted = spec(instance).driver;
    if (wanted && wanted !== this.driver.name) {
      throw new TerminalError(
        'DriverUnavailable',
        `${instanceRef(instance)}: spec.driver is ${wanted} but host ${this.init.hostName} runs the ${this.driver.name} driver; ` +
          `clear spec.driver or place the instance on a host with ${wanted}`,
      );
    }

    const generation = instance.metadata.generation ?? 1;
    const template = this.store.get({
      kind: SERVICE_TEMPLATE.kind,
      namespace: instance.metadata.namespace ?? 'default',
      name: spec(instance).templateRef.name,
    });
    const located = await this.locateImage(instance, template, signal);
    if ('reason' in located) {
      const problem = located;
      this.writeStatus(key, generation, (status) => {
        setCondition(status, { type: TEMPLATE_READY, status: 'False', ...problem }, generation);
        if (!this.machines.has(key))
          status.phase = problem.reason === 'TemplateNotFound' ? 'Pending' : 'Pulling';
      });
      // The template watch brings the key back when it changes; poll too (the image may arrive by other ways).
      return { requeueAfterMs: this.init.templateRetryMs ?? 10_000 };
    }

    const imagePath = located.imagePath;
    const identity = identityOf(instance);
    const env: Record<string, string> = {
      XENOS_INSTANCE: identity.name,
      XENOS_NAMESPACE: identity.namespace,
    };
    if (this.init.apiUrl) env.XENOS_API = this.init.apiUrl;
    const token = this.credentials?.tokenFor(identity);
    // Throws TerminalError for a spec that can never work: stalled() records it.
    const desired = buildDesiredDomain(instance, template!, { imagePath, env, token });

    const entry = this.machines.get(key) ?? (await this.createMachine(key, instance, desired, signal));
    entry.instance = instance;
    this.feed(entry, instance, desired);

    const snap = entry.actor.getSnapshot();
    this.writeStatus(key, generation, (status) => {
      const wasReady = isConditionTrue(status, TEMPLATE_READY);
      setCondition(
        status,
        {
          type: TEMPLATE_READY,
          status: 'True',
          reason: 'ImagePresent',
          message: `template ${template!.metadata.name}: image ${template!.status!.digest} is on host ${this.init.hostName}`,
        },
        generation,
      );
      if (!wasReady) {
        this.event(
          instance,
          'Normal',
          'Pulled',
          `Image ${template!.status!.digest} is present on host ${this.init.hostName}`,
        );
      }
      removeCondition(status, STALLED);
      applySnapshot(status, snap, generation);
      status.serviceType = template!.spec?.serviceType ?? template!.metadata.name;
    });
    return undefined;
  }

  /** The local path of the template's image, or why the template cannot be used yet. */
  private async locateImage(
    instance: ServiceInstance,
    template: ServiceTemplate | undefined,
    signal: AbortSignal,
  ): Promise<{ imagePath: string } | { reason: string; message: string }> {
    const ns = instance.metadata.namespace ?? 'default';
    const name = spec(instance).templateRef.name;
    if (!template) {
      return {
        reason: 'TemplateNotFound',
        message: `${instanceRef(instance)}: spec.templateRef.name: ServiceTemplate ${ns}/${name} does not exist; create it (xenosctl apply -f) or fix the reference`,
      };
    }
    const digest = template.status?.digest;
    if (!digest) {
      return {
        reason: 'ImageNotReady',
        message: `ServiceTemplate ${ns}/${name} has no imported image yet (status.digest is empty); waiting for it`,
      };
    }
    const imagePath = await this.images.locate(digest, { signal });
    if (!imagePath) {
      return {
        reason: 'ImageNotPresent',
        message: `image ${digest} of ServiceTemplate ${ns}/${name} is not on host ${this.init.hostName} yet; waiting for the import`,
      };
    }
    return { imagePath };
  }

  /** Single host: place every unplaced instance here. */
  private place(instance: ServiceInstance): undefined {
    this.store.update({ ...instance, spec: { ...spec(instance), host: this.init.hostName } });
    this.event(instance, 'Normal', 'Scheduled', `Placed on host ${this.init.hostName}`);
    return undefined;
  }

  private async createMachine(
    key: string,
    instance: ServiceInstance,
    desired: DesiredDomain,
    signal: AbortSignal,
  ): Promise<Entry> {
    // Adoption: a domain already there (running, or at rest) is taken over, never started twice.
    const found = await this.driver.inspect(desired.spec.id, { signal });
    const adopted = found && found.state !== 'prepared' && found.state !== 'unknown' ? found : undefined;
    const status = instance.status as ServiceInstanceStatus | undefined;
    // The running domain was built from the current generation unless the spec changed while no
    // controller watched, or the template's image changed.
    const current =
      status?.observedGeneration === desired.generation &&
      (!found?.imageDigest || !desired.spec.image.digest || found.imageDigest === desired.spec.image.digest);
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
    this.machines.set(key, entry);
    actor.on('record', (ev) => this.event(entry.instance, ev.eventType, ev.reason, ev.message));
    actor.subscribe({
      next: () => this.runner.enqueue(key),
      error: (err) => this.log.error({ err: err }, `domain machine of ${key} failed`),
    });
    actor.start();
    return entry;
  }

  /** Send the machine what changed: the desired domain, a Manual start/stop request. */
  private feed(entry: Entry, instance: ServiceInstance, desired: DesiredDomain): void {
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
  }

  /** The instance is being deleted: the machine stops and destroys the domain; then the finalizer goes. */
  private async finalize(key: string, instance: ServiceInstance, signal: AbortSignal): Promise<undefined> {
    if (!instance.metadata.finalizers?.includes(DOMAIN_FINALIZER)) return undefined;
    const entry = this.machines.get(key);
    if (entry && entry.actor.getSnapshot().status !== 'done') {
      entry.instance = instance;
      if (
        !entry.actor.getSnapshot().matches('deleting') &&
        !entry.actor.getSnapshot().matches('deleteFailed')
      ) {
        entry.actor.send({ type: 'DELETE' });
      }
      this.writeStatus(key, instance.metadata.generation ?? 1, (status) => {
        applySnapshot(status, entry.actor.getSnapshot(), instance.metadata.generation ?? 1);
      });
      return undefined; // the machine's progress brings the key back
    }
    if (!entry) {
      // No machine (e.g. deleted while no controller ran): tear down whatever the driver holds directly.
      const id = domainIdOf(instance);
      if (await this.driver.inspect(id, { signal })) {
        this.event(instance, 'Normal', 'Killing', `Stopping domain ${id}`);
        await teardownDomain(this.driver, id, { signal, graceMs: this.init.actors?.stopGraceMs });
      }
    }
    entry?.actor.stop();
    this.machines.delete(key);
    this.credentials?.revoke(identityOf(instance));
    return this.removeFinalizer(key);
  }

  private removeFinalizer(key: string): undefined {
    const fresh = this.store.get(objectKey(SERVICE_INSTANCE.kind, key));
    if (fresh?.metadata.finalizers?.includes(DOMAIN_FINALIZER)) {
      this.store.update({
        ...fresh,
        metadata: {
          ...fresh.metadata,
          finalizers: fresh.metadata.finalizers.filter((f) => f !== DOMAIN_FINALIZER),
        },
      });
    }
    return undefined;
  }

  /** The instance is gone or lives on another host: nothing of it may stay here. */
  private forget(key: string): undefined {
    const entry = this.machines.get(key);
    if (!entry) return undefined;
    const snap = entry.actor.getSnapshot();
    if (snap.status !== 'done') {
      if (!snap.matches('deleting') && !snap.matches('deleteFailed')) entry.actor.send({ type: 'DELETE' });
      return undefined;
    }
    entry.actor.stop();
    this.machines.delete(key);
    // Its token was issued by this host: once the domain is gone from here, so is the token.
    this.credentials?.revoke(identityOf(entry.instance));
    return undefined;
  }

  /** A terminal error of the spec: Stalled (and so not Ready); the domain, if any, is left as it is. */
  private stalled(key: string, err: TerminalError): void {
    const instance = this.store.get(objectKey(SERVICE_INSTANCE.kind, key));
    if (!instance) return;
    const generation = instance.metadata.generation ?? 1;
    this.writeStatus(key, generation, (status) => {
      if (!this.machines.has(key)) status.phase = 'Failed';
      markStalled(status, err.reason, err.message, generation);
    });
    this.event(instance, 'Warning', err.reason, err.message);
  }

  /** The one status write of a reconcile: host facts, `mutate`, then Ready summarised. */
  private writeStatus(
    key: string,
    generation: number,
    mutate: (status: ServiceInstanceStatus) => void,
  ): void {
    updateStatus(this.store, objectKey(SERVICE_INSTANCE.kind, key), (status) => {
      status.observedGeneration = generation;
      status.host = this.init.hostName;
      status.driver = this.driver.name;
      setCondition(
        status,
        {
          type: SCHEDULED,
          status: 'True',
          reason: 'Scheduled',
          message: `placed on host ${this.init.hostName}`,
        },
        generation,
      );
      mutate(status);
      summariseInstance(status, generation);
    });
  }

  /** After a restart: tear down domains whose instance is gone, replaced, or placed elsewhere; queue the rest. */
  private async sweepOrphans(signal: AbortSignal): Promise<void> {
    const domains: DomainInfo[] = await this.driver.list({ signal });
    for (const d of domains) {
      const key = d.instance.namespace ? `${d.instance.namespace}/${d.instance.name}` : d.instance.name;
      const instance = this.store.get(objectKey(SERVICE_INSTANCE.kind, key));
      const owner =
        instance &&
        instance.metadata.uid === d.instance.uid &&
        (!spec(instance).host || spec(instance).host === this.init.hostName);
      if (owner) {
        this.runner.enqueue(key);
        continue;
      }
      this.log.info(
        `domain ${d.id}: its ServiceInstance ${key} (uid ${d.instance.uid}) ${instance ? `now lives elsewhere or has another uid` : 'no longer exists'}; stopping and destroying it`,
      );
      await teardownDomain(this.driver, d.id, { signal, graceMs: this.init.actors?.stopGraceMs });
    }
  }
}
