// Publishes what this host runs into the DHT, so any host can read it without asking this one:
//  - the host record (`/xenos/host/<peerId>`, through src/p2p's Discovery): the instances on this host with
//    their service type, readiness and endpoints. It is signed, sequence-numbered and expires after `ttlMs`;
//    Discovery republishes it at half that (xenosd: --dht-record-ttl, 10 min) and at once on a change. It is
//    not a heartbeat: a dead host's endpoints leave discovery when the membership declares it dead (the
//    discover API holds DHT answers to this host's liveness view); the record expires later.
//  - one record per instance (`/xenos/inst/<peerId>/<ns>/<name>`): phase, endpoints, service type.
//  - a provider record per service type of a Ready instance here (Discovery.advertise); a type with no
//    Ready instance left is no longer re-provided, and the fresh host record stops listing it at once.
// Instance records are republished every ttlMs/2. Changes are collected for `debounceMs` and published in one pass; failures are logged and retried on
// the next change or refresh.

import { type Log, silentLogger } from '../log/logger.ts';
import { SERVICE_INSTANCE } from '../model/kinds.ts';
import type { Discovery } from '../p2p/discovery.ts';
import type { InstanceEndpoints } from '../p2p/host-status.ts';
import { fitRecord } from '../p2p/record-fit.ts';
import type { RecordPublisher } from '../p2p/record-publisher.ts';
import { instanceRecordKey } from '../p2p/records.ts';
import type { Store } from '../store/store.ts';
import { type InstanceRecord, instanceRecordOf } from './instance-endpoints.ts';

const DEFAULT_DEBOUNCE_MS = 50;
const DEFAULT_TTL_MS = 15_000;

/** What each entry of the host record says; `host` is beyond Discovery's schema (which allows it). */
export interface PublishedInstance extends InstanceEndpoints {
  host: string;
}

export interface StatusPublisherComponents {
  store: Store;
  discovery: Discovery;
  records: RecordPublisher;
  peerId: string;
  log?: Log;
}

export interface StatusPublisherInit {
  hostName: string;
  ttlMs?: number;
  debounceMs?: number;
}

export class StatusPublisher {
  readonly #store: Store;
  readonly #discovery: Discovery;
  readonly #records: RecordPublisher;
  readonly #peerId: string;
  readonly #log: Log;
  readonly #init: StatusPublisherInit;
  readonly #published = new Map<string, string>();
  #unwatch?: () => void;
  #timer?: NodeJS.Timeout;
  #refresh?: NodeJS.Timeout;
  #running?: Promise<void>;
  #again = false;
  #stop = new AbortController();

  constructor(components: StatusPublisherComponents, init: StatusPublisherInit) {
    this.#store = components.store;
    this.#discovery = components.discovery;
    this.#records = components.records;
    this.#peerId = components.peerId;
    this.#log = components.log ?? silentLogger.root;
    this.#init = init;
  }

  get ttlMs(): number {
    return this.#init.ttlMs ?? DEFAULT_TTL_MS;
  }

  start(): void {
    if (this.#unwatch) return;
    this.#stop = new AbortController();
    this.#unwatch = this.#store.watch(SERVICE_INSTANCE.kind, {}, (ev) => {
      const i = ev.object;
      const key = `${i.metadata.namespace ?? 'default'}/${i.metadata.name}`;
      if (i.spec?.host === this.#init.hostName || this.#published.has(key)) this.schedule();
    });
    // Instance records expire after ttlMs: publish them all again at half of it.
    this.#refresh = setInterval(
      () => {
        this.#published.clear();
        this.schedule();
      },
      Math.max(500, this.ttlMs / 2),
    );
    this.schedule();
  }

  async stop(): Promise<void> {
    this.#unwatch?.();
    this.#unwatch = undefined;
    clearTimeout(this.#timer);
    clearInterval(this.#refresh);
    this.#stop.abort(new Error('status publisher stopping'));
    await this.#running?.catch(() => {});
  }

  /** Publish soon (changes within debounceMs are published together). */
  schedule(): void {
    if (!this.#unwatch) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#running = this.publish({ signal: this.#stop.signal })
        .catch((err) => {
          if (!this.#stop.signal.aborted)
            this.#log.warn({ err }, `publishing status failed: ${err?.message ?? err}`);
        })
        .finally(() => {
          this.#running = undefined;
          if (this.#again) {
            this.#again = false;
            this.schedule();
          }
        });
    }, this.#init.debounceMs ?? DEFAULT_DEBOUNCE_MS);
  }

  /** The instances bound to this host, as they are published. */
  current(): InstanceRecord[] {
    return this.#store
      .list(SERVICE_INSTANCE.kind)
      .items.filter((i) => i.spec?.host === this.#init.hostName && !i.metadata.deletionTimestamp)
      .map((i) => instanceRecordOf(i, this.#init.hostName));
  }

  /** One pass: host record (what discover checks), provider records, then changed instance records. */
  async publish(options: { signal?: AbortSignal } = {}): Promise<void> {
    const records = this.current();
    const hostEntries: PublishedInstance[] = records
      .filter((r) => r.serviceType)
      .map((r) => ({
        namespace: r.namespace,
        name: r.name,
        serviceType: r.serviceType,
        endpoints: r.endpoints,
        ready: r.ready,
        host: r.host,
      }));
    await this.#discovery.publishStatus(hostEntries, options);

    const types = new Set(records.filter((r) => r.ready && r.serviceType).map((r) => r.serviceType));
    for (const t of types)
      if (!this.#discovery.advertised.includes(t)) await this.#discovery.advertise(t, options);
    for (const t of this.#discovery.advertised) if (!types.has(t)) await this.#discovery.unadvertise(t);

    const seen = new Set<string>();
    for (const r of records) {
      const key = `${r.namespace}/${r.name}`;
      seen.add(key);
      const text = JSON.stringify(r);
      if (this.#published.get(key) === text) continue;
      const recordKey = instanceRecordKey(this.#peerId, r.namespace, r.name);
      // As many endpoints as one record holds (record-fit.ts); the record says how many it left out.
      const { payload } = fitRecord('instance', recordKey, this.#peerId, r.endpoints.length, (n) => ({
        ...r,
        endpoints: r.endpoints.slice(0, n),
        ...(n < r.endpoints.length ? { truncated: { instances: 0, endpoints: r.endpoints.length - n } } : {}),
      }));
      await this.#records.publishRecord('instance', recordKey, payload, { ...options, ttl: this.ttlMs });
      this.#published.set(key, text);
    }
    for (const key of [...this.#published.keys()]) if (!seen.has(key)) this.#published.delete(key);
  }
}
