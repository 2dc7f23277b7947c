// The Host controller of one xenosd: membership in the store. For its own Host object (name = host name)
// it registers the host (create, labels) and keeps its status true: capacity and allocatable from the
// machine, what its instances take, driver and capabilities, addresses, peer id, version, the images it
// holds complete (for pullers and placement; refreshSelf() when that set changes) and Ready=True.
// It writes only when one of these changes (a watch event, refreshSelf(), or a slow re-read of the
// machine's facts): an idle host writes nothing. Whether a host is alive is not in the store at all: the
// membership protocol (src/p2p/membership, read through src/cluster/liveness.ts) knows it.
//
// For every other Host it follows liveness. A host the membership declares dead must show Ready=False
// everywhere, yet it cannot say so itself; as Kubernetes' node-lifecycle controller does for a silent
// kubelet, one other host writes it: the live host that ranks first for `host/<name>` by rendezvous hash
// among the hosts it sees live (deterministic, so normally exactly one; a duplicate write is identical
// and harmless) — and only after its own probe of the host (direct, then through others) fails too, so a
// verdict never rests on others' word alone. When the host is back it sees the verdict on its own Host
// and writes Ready=True itself; a live host never rewrites its Ready on a timer.
//
// With --auto-drain, a host whose health has degraded for a while drains itself (auto-drain.ts).

import { availableParallelism, totalmem } from 'node:os';
import type { HostLiveness } from '../../src/cluster/liveness.ts';
import type { Placement } from '../../src/cluster/placement.ts';
import { ownerOf } from '../../src/cluster/rendezvous.ts';
import { formatCpu, formatMemory, type Offer } from '../../src/cluster/resources.ts';
import { type Log, silentLogger } from '../../src/log/logger.ts';
import type { ReconcileMetrics } from '../../src/metrics/host-metrics.ts';
import type { Host, HostImage } from '../../src/model/host.ts';
import { API_VERSION, HOST, SERVICE_INSTANCE } from '../../src/model/kinds.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import { getCondition, READY, setCondition } from '../../src/reconcile/conditions.ts';
import { Controller, type ReconcileResult } from '../../src/reconcile/controller.ts';
import { keyOf, objectKey } from '../../src/reconcile/keys.ts';
import { updateStatus } from '../../src/reconcile/status.ts';
import { AlreadyExistsError } from '../../src/store/errors.ts';
import type { Store } from '../../src/store/store.ts';
import { autoDrain } from './auto-drain.ts';
import { failOver } from './failover.ts';

export const HOSTNAME_LABEL = 'xenos.io/hostname';
/** The reason of an instance's Ready=Unknown while its host is NotReady. */
export const HOST_NOT_READY = 'HostNotReady';
/** How often this host re-reads its machine's facts (written only if they changed). */
export const DEFAULT_RESYNC_MS = 60_000;
export const DEFAULT_MAX_INSTANCES = 110;

/** What the daemon knows about this host, read at every reconcile of its Host. */
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
  /** The complete images this host holds and serves, sorted by digest (changes only when the set does). */
  images?: HostImage[];
}

export interface HostControllerComponents {
  store: Store;
  liveness: HostLiveness;
  facts: () => HostFacts;
  /** What the instances bound to a host take (placement's incremental allocations). */
  allocations: { allocated(host: string): Offer };
  /** Where a failed-over instance goes (absent: instances are marked, never re-bound). */
  placement?: Pick<Placement, 'decide'>;
  log?: Log;
  /** Reconcile results, latency and queue depth go here (the host's /metrics). */
  metrics?: ReconcileMetrics;
}

export interface HostControllerInit {
  hostName: string;
  /** Labels this host puts on its Host object (hostSelectors match them); xenos.io/hostname is added. */
  labels?: Record<string, string>;
  /** How often this host's own facts are re-read (default 60 s); nothing is written unless they changed. */
  resyncMs?: number;
  /** How often a host that is not live and not yet marked is looked at again, in case the host that
   *  should mark it died first (default a third of the host timeout). */
  recheckMs?: number;
  /** allocatable.instances. */
  maxInstances?: number;
  /** --auto-drain: drain this host once a degraded condition has held this long (absent: never). */
  autoDrainAfterMs?: number;
}

export class HostController {
  readonly #store: Store;
  readonly #liveness: HostLiveness;
  readonly #facts: () => HostFacts;
  readonly #allocations: { allocated(host: string): Offer };
  readonly #placement?: Pick<Placement, 'decide'>;
  readonly #log: Log;
  readonly #init: HostControllerInit;
  readonly #resync: number;
  readonly #recheck: number;
  #unlisten?: () => void;
  readonly #runner: Controller<typeof HOST.kind>;
  readonly #instancePrints = new Map<string, { print: string; host?: string }>();

  constructor(components: HostControllerComponents, init: HostControllerInit) {
    this.#store = components.store;
    this.#liveness = components.liveness;
    this.#facts = components.facts;
    this.#allocations = components.allocations;
    this.#placement = components.placement;
    this.#log = components.log ?? silentLogger.root;
    this.#init = init;
    this.#resync = init.resyncMs ?? DEFAULT_RESYNC_MS;
    this.#recheck = init.recheckMs ?? Math.max(1000, Math.round(this.#liveness.timeoutMs / 3));
    this.#runner = new Controller(
      { store: this.#store, log: this.#log, metrics: components.metrics },
      {
        name: 'host',
        kind: HOST.kind,
        workers: 1,
        reconcile: (key, opts) => this.reconcile(key, opts),
        watches: [{ kind: SERVICE_INSTANCE.kind, map: (i) => this.#instanceChanged(i) }],
      },
    );
  }

  /** What this host's allocation reads of an instance changed: its binding, request, template or deletion.
   *  Status-only writes (several per instance as it starts) do not re-sum the host; the slow re-read
   *  re-sums anyway. */
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
    const here = this.#init.hostName;
    // Prints are kept for this host's instances only: another host's instance matters once it is bound here.
    if (host === here) this.#instancePrints.set(key, { print, host });
    else this.#instancePrints.delete(key);
    if (before?.print === print) return [];
    return host === here || before?.host === here ? [here] : [];
  }

  start(): void {
    this.#runner.start();
    this.#unlisten = this.#liveness.onChange((host) => this.#runner.enqueue(host));
    this.#runner.enqueue(this.#init.hostName);
  }

  /** Re-read this host's facts now (e.g. once the driver is chosen) instead of at the next re-read. */
  refreshSelf(): void {
    this.#runner.enqueue(this.#init.hostName);
  }

  async stop(): Promise<void> {
    this.#unlisten?.();
    this.#unlisten = undefined;
    await this.#runner.stop();
  }

  async reconcile(name: string, opts: { signal?: AbortSignal } = {}): Promise<ReconcileResult | undefined> {
    return name === this.#init.hostName ? this.#reconcileSelf(name) : this.#reconcileOther(name, opts);
  }

  async #reconcileSelf(name: string): Promise<ReconcileResult> {
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
    // Written only when something differs (updateStatus compares); so the watch event of our own write
    // ends here, and an idle host writes nothing.
    const self = await updateStatus(this.#store, key, (status, obj) => {
      const facts = this.#facts();
      // A status written before membership had heartbeats; it changed every few seconds: never again.
      delete status.heartbeatTime;
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
      if (facts.images) status.images = facts.images;
      for (const c of facts.conditions ?? []) setCondition(status, c, obj.metadata.generation);
      const spec = obj.spec;
      status.phase = spec?.drain ? 'Draining' : 'Ready';
      status.observedGeneration = obj.metadata.generation;
      setCondition(
        status,
        {
          type: READY,
          status: 'True',
          reason: 'HostRunning',
          message: `xenosd on ${name} is running`,
        },
        obj.metadata.generation,
      );
    });
    const after = this.#init.autoDrainAfterMs;
    if (after === undefined || !self) return { requeueAfterMs: this.#resync };
    const pass = autoDrain({ store: this.#store, log: this.#log }, self, after);
    return { requeueAfterMs: Math.min(this.#resync, pass.nextInMs ?? this.#resync) };
  }

  /** What the instances bound here take, from the allocations placement keeps incrementally (no list of
   *  every instance per reconcile: under a burst of creates that list was 30 % of xenosd's CPU). */
  #allocated(name: string) {
    const used = this.#allocations.allocated(name);
    // Forget the prints of instances deleted since (they are kept only to skip status-only changes):
    // only this host's instances have prints, so there are more prints than bound instances only then.
    if (this.#instancePrints.size > used.instances) {
      for (const key of this.#instancePrints.keys()) {
        const [namespace, iname] = key.split('/');
        if (!this.#store.get({ kind: SERVICE_INSTANCE.kind, namespace, name: iname }))
          this.#instancePrints.delete(key);
      }
    }
    return used;
  }

  async #reconcileOther(name: string, opts: { signal?: AbortSignal }): Promise<ReconcileResult | undefined> {
    const key = objectKey(HOST.kind, name);
    const host = this.#store.get(key);
    if (!host) return undefined;
    // Liveness changes bring the key back (start() listens): nothing to do for a live host.
    if (this.#liveness.isLive(name)) return undefined;
    const owner = () => ownerOf(`host/${name}`, this.#liveness.liveHosts());
    const verdict = getCondition(host.status, READY);
    if (verdict?.status === 'False') {
      // Marked already: its instances say so too (one bound since, or a verdict cut short by a restart),
      // and those that fail over move once their time has come. Another host may be the owner now (the
      // one that marked it died): every host looks again now and then.
      if (this.#liveness.warmingUp || owner() !== this.#init.hostName)
        return { requeueAfterMs: this.#recheck };
      await this.#markInstances(name);
      return this.#failOver(name, verdict.lastTransitionTime);
    }
    if (this.#liveness.warmingUp) return { requeueAfterMs: this.#liveness.remainingMs() + 50 };
    if (owner() !== this.#init.hostName) return { requeueAfterMs: this.#recheck };
    // The verdict rests on this host's own probe too: a host that answers it is not marked.
    if (await this.#liveness.answers(name, opts)) {
      this.#log.info({ host: name }, `host ${name} is held dead but answers this host's probe; not marked`);
      return { requeueAfterMs: this.#recheck };
    }
    if (this.#liveness.isLive(name)) return undefined; // it came back while we probed
    const me = this.#init.hostName;
    const death = this.#liveness.deathOf(name);
    const why =
      this.#liveness.stateOf(name) === 'dead'
        ? `the membership of ${me} declared it dead${death ? ` (${death.detail})` : ''}`
        : `the membership of ${me} has not met it in the ${Math.round(this.#liveness.timeoutMs / 1000)} s since ${me} started`;
    const marked = await updateStatus(this.#store, key, (status, obj) => {
      status.phase = 'NotReady';
      setCondition(
        status,
        {
          type: READY,
          status: 'False',
          reason: 'HostUnreachable',
          message: `${why}, and ${me}'s own probe (direct, then through other hosts) got no answer; marked by ${me}`,
        },
        obj.metadata.generation,
      );
    });
    if (marked) this.#log.info({ host: name }, `host ${name}: unreachable (${why}); marked NotReady`);
    await this.#markInstances(name);
    return this.#failOver(name, getCondition(this.#store.get(key)?.status, READY)?.lastTransitionTime);
  }

  /** Re-binds the instances of the NotReady host `name` whose time has come (failover.ts); the next pass
   *  when more are due. */
  #failOver(name: string, notReadySince: string | undefined): ReconcileResult | undefined {
    if (!this.#placement) return undefined;
    const since = Date.parse(notReadySince ?? '');
    const pass = failOver(
      { store: this.#store, placement: this.#placement, liveness: this.#liveness, log: this.#log },
      name,
      Number.isNaN(since) ? Date.now() : since,
    );
    return { requeueAfterMs: Math.max(100, Math.min(pass.nextInMs ?? this.#recheck, this.#recheck)) };
  }

  /** The instances bound to the NotReady host `name`: nobody can say how they are, so they are not Ready
   *  (Unknown, HostNotReady) and leave discovery. A verdict changes only their phase and Ready condition;
   *  the host, when it comes back, writes their status again. */
  async #markInstances(name: string): Promise<void> {
    let marked = 0;
    for (const i of this.#store.list(SERVICE_INSTANCE.kind).items) {
      if (i.spec?.host !== name || i.metadata.deletionTimestamp) continue;
      const ready = getCondition(i.status, READY);
      if (ready?.status === 'Unknown' && ready.reason === HOST_NOT_READY) continue;
      const wrote = await updateStatus(
        this.#store,
        objectKey(SERVICE_INSTANCE.kind, keyOf(i)),
        (status, obj) => {
          status.phase = 'Unknown';
          setCondition(
            status,
            {
              type: READY,
              status: 'Unknown',
              reason: HOST_NOT_READY,
              message: `its host ${name} is NotReady: how the instance is there cannot be known until the host comes back (marked by ${this.#init.hostName})`,
            },
            obj.metadata.generation,
          );
        },
      ).catch((err: Error) => {
        this.#log.warn({ err, host: name }, `instance ${keyOf(i)}: cannot mark it Unknown: ${err.message}`);
        return undefined;
      });
      if (wrote) marked += 1;
    }
    if (marked > 0)
      this.#log.info({ host: name }, `host ${name}: ${marked} instance(s) marked Ready=Unknown`);
  }
}
