// The binding step of placement, as kube-scheduler is to Kubernetes: it writes only `spec.host` of
// ServiceInstances that have none, and nothing else (the ServiceInstance controller remains the one
// controller of the kind; it runs with placeUnplaced=false and picks up instances bound to its host).
// Every host runs it over the same replicated store; for each unplaced instance it asks Placement for
// the ranking, and only the host ranked first binds — itself. If views of who is live disagree and two
// hosts bind, the replicated store keeps the binding written last (LWW on (hlc, writer)) and the other
// host's instance controller stops its copy when it sees spec.host name another host. An instance no
// host can take gets a FailedScheduling event from the live host that owns its key, and is retried.

import { recordEvent } from '../api/events.ts';
import type { Log } from '../log/logger.ts';
import type { ReconcileMetrics } from '../metrics/host-metrics.ts';
import type { Host } from '../model/host.ts';
import { HOST, SERVICE_INSTANCE } from '../model/kinds.ts';
import { Controller, type ReconcileResult } from '../reconcile/controller.ts';
import { objectKey } from '../reconcile/keys.ts';
import { ConflictError } from '../store/errors.ts';
import type { Store } from '../store/store.ts';
import type { HostLiveness } from './liveness.ts';
import { type Placement, placementKey } from './placement.ts';
import { ownerOf } from './rendezvous.ts';

const COMPONENT = 'scheduler';
const UNSCHEDULABLE_RETRY_MS = 30_000;

export interface SchedulerComponents {
  store: Store;
  placement: Placement;
  liveness: HostLiveness;
  log?: Log;
  /** Reconcile results, latency and queue depth go here (the host's /metrics). */
  metrics?: ReconcileMetrics;
}

export interface SchedulerInit {
  hostName: string;
  /** Re-check an instance another host should take (it may die) this often. */
  retryMs?: number;
}

export class Scheduler {
  readonly #store: Store;
  readonly #placement: Placement;
  readonly #liveness: HostLiveness;
  #unlisten?: () => void;
  readonly #init: SchedulerInit;
  readonly #runner: Controller<typeof SERVICE_INSTANCE.kind>;
  readonly #warned = new Map<string, string>();
  readonly #hostPrints = new Map<string, string>();

  constructor(components: SchedulerComponents, init: SchedulerInit) {
    this.#store = components.store;
    this.#placement = components.placement;
    this.#liveness = components.liveness;
    this.#init = init;
    this.#runner = new Controller(
      { store: this.#store, log: components.log, metrics: components.metrics },
      {
        name: COMPONENT,
        kind: SERVICE_INSTANCE.kind,
        workers: 1,
        filter: (instance) => !instance.spec?.host,
        reconcile: (key) => this.reconcile(key),
        // A host joining or changing what placement looks at may make an instance placeable; a status
        // write that changes none of that does not re-check every unplaced instance.
        watches: [{ kind: HOST.kind, map: (h) => (this.#hostChanged(h) ? this.unplaced() : []) }],
        onTerminal: () => {},
      },
    );
  }

  start(): void {
    this.#placement.start();
    this.#runner.start();
    // A host dying or coming back changes who fits and who binds: look at every unplaced instance again.
    this.#unlisten = this.#liveness.onChange(() => {
      for (const key of this.unplaced()) this.#runner.enqueue(key);
    });
  }

  async stop(): Promise<void> {
    this.#unlisten?.();
    this.#unlisten = undefined;
    await this.#runner.stop();
    this.#placement.stop();
  }

  /** Whether what placement reads of host `h` changed since its last event. */
  #hostChanged(host: Host): boolean {
    const print = JSON.stringify([
      host.metadata.labels,
      host.spec,
      host.metadata.deletionTimestamp,
      host.status?.conditions?.find((c) => c.type === 'Ready')?.status,
      host.status?.allocatable,
      host.status?.drivers,
      host.status?.driver,
    ]);
    if (this.#hostPrints.get(host.metadata.name) === print) return false;
    this.#hostPrints.set(host.metadata.name, print);
    return true;
  }

  /** The keys of the instances no host is bound to yet (from placement's cache, not a store list). */
  unplaced(): string[] {
    return this.#placement.unplaced();
  }

  /** Decides and binds in one group commit: the binding and its event share a transaction (and an
   *  fsync) with whatever else is written in the same turn, and the decision reads the store inside it. */
  reconcile(key: string): Promise<ReconcileResult | undefined> {
    return this.#store.groupCommit(() => this.#decideAndBind(key));
  }

  #decideAndBind(key: string): ReconcileResult | undefined {
    const instance = this.#store.get(objectKey(SERVICE_INSTANCE.kind, key));
    // An instance without a spec cannot pass the API's validation; there is nothing to place.
    if (!instance?.spec || instance.spec.host || instance.metadata.deletionTimestamp) {
      this.#warned.delete(key);
      return undefined;
    }
    const retry = this.#init.retryMs ?? 2_000;
    const decision = this.#placement.decide(instance);
    if (decision.host === undefined) {
      // Nothing fits: host changes bring the key back (see the Host watch); also re-check now and then.
      const owner = ownerOf(placementKey(instance), this.#liveness.liveHosts());
      if (owner === this.#init.hostName && this.#warned.get(key) !== decision.message) {
        this.#warned.set(key, decision.message);
        recordEvent(this.#store, instance, 'Warning', 'FailedScheduling', decision.message, {
          component: COMPONENT,
          host: this.#init.hostName,
        });
      }
      return { requeueAfterMs: UNSCHEDULABLE_RETRY_MS };
    }
    // Another host should bind it; if it dies first, the liveness change brings the key back here.
    if (decision.host !== this.#init.hostName)
      return { requeueAfterMs: Math.max(retry, this.#liveness.remainingMs() + retry) };
    try {
      this.#store.update({ ...instance, spec: { ...instance.spec, host: this.#init.hostName } });
    } catch (err) {
      if (err instanceof ConflictError) return { requeueAfterMs: 0 };
      throw err;
    }
    this.#warned.delete(key);
    recordEvent(
      this.#store,
      instance,
      'Normal',
      'Scheduled',
      `Bound to host ${this.#init.hostName} (first of ${decision.ranked.length} fitting live host(s) by rendezvous hash)`,
      { component: COMPONENT, host: this.#init.hostName },
    );
    return undefined;
  }
}
