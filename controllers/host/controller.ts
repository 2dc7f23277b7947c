// The Host controller of one xenosd: membership. For its own Host object (name = host name) it
// registers the host (create, labels), and keeps its status current: capacity and allocatable from the
// machine, what its instances take, driver and capabilities, addresses, peer id, version and a fresh
// `heartbeatTime` every heartbeat interval, with Ready=True. Only this host writes that status.
//
// For every other Host it watches liveness (src/cluster/liveness.ts: a heartbeat change seen on this
// host's own clock within the timeout). A host that has gone silent must show Ready=False everywhere,
// yet it cannot say so itself; as Kubernetes' node-lifecycle controller does for a silent kubelet, one
// other host writes it: the live host that ranks first for `host/<name>` by rendezvous hash among the
// hosts it sees live (deterministic, so normally exactly one; a duplicate write is identical and
// harmless). When the host returns, its own next heartbeat writes Ready=True and, being the newer
// write, wins in the replicated store.

import { availableParallelism, totalmem } from 'node:os';
import type { HostLiveness } from '../../src/cluster/liveness.ts';
import { ownerOf } from '../../src/cluster/rendezvous.ts';
import { allocatedBy, formatCpu, formatMemory } from '../../src/cluster/resources.ts';
import { type Log, silentLogger } from '../../src/log/logger.ts';
import type { Host } from '../../src/model/host.ts';
import { API_VERSION, HOST, SERVICE_INSTANCE, SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import { getCondition, READY, setCondition } from '../../src/reconcile/conditions.ts';
import { Controller, type ReconcileResult } from '../../src/reconcile/controller.ts';
import { objectKey } from '../../src/reconcile/keys.ts';
import { updateStatus } from '../../src/reconcile/status.ts';
import { AlreadyExistsError } from '../../src/store/errors.ts';
import type { Store } from '../../src/store/store.ts';

export const HOSTNAME_LABEL = 'xenos.io/hostname';
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 3_000;
export const DEFAULT_MAX_INSTANCES = 110;

/** What the daemon knows about this host, read at every heartbeat. */
export interface HostFacts {
  driver?: string;
  drivers?: string[];
  capabilities?: string[];
  apiUrl?: string;
  p2pAddrs?: string[];
  peerId?: string;
  version?: string;
  /** Conditions the driver reports about its domains (`DomainsSandboxed`, `DomainLimitsEnforced`). */
  conditions?: { type: string; status: 'True' | 'False' | 'Unknown'; reason: string; message: string }[];
}

export interface HostControllerComponents {
  store: Store;
  liveness: HostLiveness;
  facts: () => HostFacts;
  log?: Log;
}

export interface HostControllerInit {
  hostName: string;
  /** Labels this host puts on its Host object (hostSelectors match them); xenos.io/hostname is added. */
  labels?: Record<string, string>;
  heartbeatIntervalMs?: number;
  /** allocatable.instances. */
  maxInstances?: number;
  /** Called after each heartbeat written (the daemon republishes the DHT heartbeat record then). */
  onHeartbeat?: (host: Host) => void;
}

export class HostController {
  readonly #store: Store;
  readonly #liveness: HostLiveness;
  readonly #facts: () => HostFacts;
  readonly #log: Log;
  readonly #init: HostControllerInit;
  readonly #interval: number;
  readonly #runner: Controller<typeof HOST.kind>;
  readonly #instancePrints = new Map<string, { print: string; host?: string }>();

  constructor(components: HostControllerComponents, init: HostControllerInit) {
    this.#store = components.store;
    this.#liveness = components.liveness;
    this.#facts = components.facts;
    this.#log = components.log ?? silentLogger.root;
    this.#init = init;
    this.#interval = init.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    this.#runner = new Controller(
      { store: this.#store, log: this.#log },
      {
        name: 'host',
        kind: HOST.kind,
        workers: 1,
        reconcile: (key) => this.reconcile(key),
        watches: [{ kind: SERVICE_INSTANCE.kind, map: (i) => this.#instanceChanged(i) }],
      },
    );
  }

  /** What this host's allocation reads of an instance changed: its binding, request, template or deletion.
   *  Status-only writes (several per instance as it starts) do not re-sum the host; the heartbeat re-sums
   *  anyway, so anything skipped here is reflected within one interval. */
  #instanceChanged(si: ServiceInstance): string[] {
    const key = `${si.metadata.namespace}/${si.metadata.name}`;
    const host = si.spec?.host;
    const print = JSON.stringify([
      si.metadata.uid,
      host,
      si.spec?.resources,
      si.spec?.templateRef,
      si.metadata.deletionTimestamp,
    ]);
    const before = this.#instancePrints.get(key);
    this.#instancePrints.set(key, { print, host });
    if (before?.print === print) return [];
    const here = this.#init.hostName;
    return host === here || before?.host === here ? [here] : [];
  }

  start(): void {
    this.#runner.start();
    this.#runner.enqueue(this.#init.hostName);
  }

  /** Re-read this host's facts now (e.g. once the driver is chosen) instead of at the next heartbeat. */
  refreshSelf(): void {
    this.#runner.enqueue(this.#init.hostName);
  }

  async stop(): Promise<void> {
    await this.#runner.stop();
  }

  reconcile(name: string): ReconcileResult | undefined {
    return name === this.#init.hostName ? this.#reconcileSelf(name) : this.#reconcileOther(name);
  }

  #reconcileSelf(name: string): ReconcileResult {
    const key = objectKey(HOST.kind, name);
    const labels = { ...this.#init.labels, [HOSTNAME_LABEL]: name };
    const existing = this.#store.get(key);
    if (!existing) {
      try {
        this.#store.create<Host>({
          apiVersion: API_VERSION,
          kind: HOST.kind,
          metadata: { name, labels },
          spec: {},
        });
      } catch (err) {
        if (!(err instanceof AlreadyExistsError)) throw err;
      }
    } else if (Object.entries(labels).some(([k, v]) => existing.metadata.labels?.[k] !== v)) {
      this.#store.update({
        ...existing,
        metadata: { ...existing.metadata, labels: { ...existing.metadata.labels, ...labels } },
      });
    }
    const now = Date.now();
    let beat = false;
    const written = updateStatus(this.#store, key, (status, obj) => {
      const facts = this.#facts();
      const last = status.heartbeatTime ? Date.parse(status.heartbeatTime) : 0;
      // Beat when due; the watch event of our own write must not start a write loop.
      if (now - last >= this.#interval * 0.9 || getCondition(status, READY)?.status !== 'True') {
        status.heartbeatTime = new Date(now).toISOString();
        beat = true;
      }
      const capacity = {
        cpu: String(availableParallelism()),
        memory: formatMemory(totalmem()),
        instances: this.#init.maxInstances ?? DEFAULT_MAX_INSTANCES,
      };
      status.capacity = capacity;
      status.allocatable = { ...capacity };
      const used = this.#allocated(name);
      status.allocated = {
        cpu: formatCpu(used.cpuMillis),
        memory: formatMemory(used.memory),
        instances: used.instances,
      };
      if (facts.driver) status.driver = facts.driver;
      if (facts.drivers) status.drivers = facts.drivers;
      if (facts.capabilities) status.capabilities = facts.capabilities;
      status.addresses = {
        ...(facts.apiUrl ? { api: facts.apiUrl } : {}),
        ...(facts.p2pAddrs ? { p2p: facts.p2pAddrs } : {}),
      };
      if (facts.peerId) status.peerId = facts.peerId;
      if (facts.version) status.version = facts.version;
      for (const c of facts.conditions ?? []) setCondition(status, c, obj.metadata.generation);
      const spec = obj.spec;
      status.phase = spec?.drain ? 'Draining' : 'Ready';
      status.observedGeneration = obj.metadata.generation;
      setCondition(
        status,
        {
          type: READY,
          status: 'True',
          reason: 'HeartbeatFresh',
          message: `xenosd on ${name} is running and heartbeating`,
        },
        obj.metadata.generation,
      );
    });
    if (beat && written) this.#init.onHeartbeat?.(written);
    const last = Date.parse(written?.status?.heartbeatTime ?? '') || now;
    return { requeueAfterMs: Math.max(50, last + this.#interval - Date.now()) };
  }

  #allocated(name: string) {
    const all = this.#store.list(SERVICE_INSTANCE.kind).items;
    // Forget the prints of deleted instances (they are kept only to skip status-only changes).
    if (this.#instancePrints.size > all.length) {
      const live = new Set(all.map((i) => `${i.metadata.namespace}/${i.metadata.name}`));
      for (const key of this.#instancePrints.keys()) if (!live.has(key)) this.#instancePrints.delete(key);
    }
    const mine = all.filter((i) => i.spec?.host === name);
    return allocatedBy(mine, (i) =>
      this.#store.get({
        kind: SERVICE_TEMPLATE.kind,
        namespace: i.metadata.namespace ?? 'default',
        name: i.spec?.templateRef?.name ?? '',
      }),
    );
  }

  #reconcileOther(name: string): ReconcileResult | undefined {
    const host = this.#store.get(objectKey(HOST.kind, name));
    if (!host) return undefined;
    if (this.#liveness.isLive(name)) {
      return { requeueAfterMs: this.#liveness.remainingMs(name) + 50 };
    }
    if (this.#liveness.warmingUp) return { requeueAfterMs: this.#interval };
    const owner = ownerOf(`host/${name}`, this.#liveness.liveHosts());
    if (owner !== this.#init.hostName) return { requeueAfterMs: this.#interval };
    if (getCondition(host.status, READY)?.status === 'False') return { requeueAfterMs: this.#interval };
    const silent = this.#liveness.silentForMs(name);
    updateStatus(this.#store, objectKey(HOST.kind, name), (status, obj) => {
      status.phase = 'NotReady';
      setCondition(
        status,
        {
          type: READY,
          status: 'False',
          reason: 'HeartbeatTimeout',
          message:
            `no heartbeat from ${name} seen by ${this.#init.hostName} for ` +
            `${silent == null ? 'ever' : `${Math.round(silent / 1000)} s`} ` +
            `(timeout ${Math.round(this.#liveness.timeoutMs / 1000)} s); marked by ${this.#init.hostName}`,
        },
        obj.metadata.generation,
      );
    });
    this.#log.info(`host ${name}: no heartbeat within ${this.#liveness.timeoutMs} ms; marked NotReady`);
    return { requeueAfterMs: this.#interval };
  }
}
