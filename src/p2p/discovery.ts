// Service discovery over the DHT. A host advertises each service type it runs as a DHT provider record under
// CID(sha256("/xenos/svc/<type>")) and re-provides periodically; it also publishes a signed, expiring status
// record (`/xenos/host/<peerId>`: its instances with their endpoints), refreshed before it expires and served
// directly on `/xenos/status/1.0.0`. Provider records linger after a host stops running a service (or stops),
// so `discover(type)` only returns a provider's endpoints after checking its status record: signature, expiry,
// and that it still lists a ready instance of that type with endpoints.
//
// Latency: `discover` first sends GET_PROVIDERS straight to the 3 peers closest to the key among its routing
// table and its connections (one round trip each, on connections already open; in a small cluster every host
// holds every provider record), and only when none of them lists a provider runs the Kademlia query (which fans
// out to ~10 peers at once and costs several times more). Either way it returns once those answers are in and
// the providers' status records are checked (each asked on its open connection, all at once; a provider with
// no connection yet is also read from the connected peers near its record key, whichever comes first), not
// when the DHT query ends. The providers it verified are remembered per type for `providerCacheTtl`; a
// later discover of the type checks them straight away (status still fetched fresh: a stopped instance
// vanishes at once) and refreshes the provider list from the DHT in the background.
//
// Its parts: the direct ask (nearest-providers.ts), reading status records (status-exchange.ts), what a
// status record says (host-status.ts). It uses the node only through DhtClient (dht-client.ts).

import { type Log, silentLogger } from '../log/logger.ts';
import type { DhtClient, OpOptions, ProviderPeer } from './dht-client.ts';
import {
  checkStatus,
  type DiscoveredHost,
  fitHostStatus,
  type HostStatus,
  type InstanceEndpoints,
  serviceCid,
  statusErrors,
} from './host-status.ts';
import { askNearest } from './nearest-providers.ts';
import type { RecordPublisher } from './record-publisher.ts';
import { hostRecordKey, MAX_RECORD_BYTES, type RecordBody } from './records.ts';
import { StatusExchange } from './status-exchange.ts';

const DEFAULT_REPROVIDE_INTERVAL = 10 * 60_000;
const DEFAULT_STATUS_TTL = 60_000;
const DEFAULT_STATUS_MAX_AGE = 5 * 60_000;
const DEFAULT_PROVIDER_CACHE_TTL = 10_000;
export interface DiscoverOptions extends OpOptions {
  /** Stop once this many hosts with fresh endpoints are found (default: no limit). */
  limit?: number;
  /**
   * Stop the provider query once this many peers have answered with provider lists (default 1, not counting
   * this host's own list when it provides the type; Infinity asks every peer near the key). The k closest
   * peers each hold the full list, so one answer normally suffices. Given, the provider cache is not used.
   */
  quorum?: number;
}

export interface DiscoveryComponents {
  /** The DHT and the stream protocols (XenosNode is one); discovery knows nothing else of the node. */
  node: DhtClient;
  records: RecordPublisher;
  log?: Log;
}

export interface DiscoveryInit {
  /** How often advertised types are provided again (ms). */
  reprovideInterval?: number;
  /** Lifetime of our status record (ms); it is republished at half of it while started. */
  statusTtl?: number;
  /** A status record without expiresAt counts as fresh for this long after issuedAt (ms). */
  statusMaxAge?: number;
  /**
   * How long the providers a discover verified are used by later discovers of the type without waiting for
   * the DHT (ms; default 10 s; 0 disables). Each use refreshes the list in the background once it is older
   * than a quarter of this, so a new provider shows within that (plus a query) for a host that keeps asking.
   */
  providerCacheTtl?: number;
}

/** Providers of one type that verified, and when the list was last read from the DHT. */
interface CachedProviders {
  peers: Map<string, ProviderPeer>;
  at: number;
}

export class Discovery {
  readonly #node: DhtClient;
  readonly #records: RecordPublisher;
  readonly #log: Log;
  readonly #reprovideInterval: number;
  readonly #statusTtl: number;
  readonly #statusMaxAge: number;
  readonly #providerCacheTtl: number;
  readonly #providers = new Map<string, CachedProviders>();
  readonly #refreshing = new Set<string>();
  readonly #advertised = new Set<string>();
  /** What publishStatus was last given (the refresh publishes it again). */
  #instances: InstanceEndpoints[] | undefined;
  readonly #exchange: StatusExchange;
  #lastTruncation = '';
  #timers: NodeJS.Timeout[] = [];
  #stop = new AbortController();
  #running = false;

  constructor(components: DiscoveryComponents, init: DiscoveryInit = {}) {
    this.#node = components.node;
    this.#records = components.records;
    this.#log = components.log ?? silentLogger.root;
    this.#reprovideInterval = init.reprovideInterval ?? DEFAULT_REPROVIDE_INTERVAL;
    this.#statusTtl = init.statusTtl ?? DEFAULT_STATUS_TTL;
    this.#statusMaxAge = init.statusMaxAge ?? DEFAULT_STATUS_MAX_AGE;
    this.#providerCacheTtl = init.providerCacheTtl ?? DEFAULT_PROVIDER_CACHE_TTL;
    this.#exchange = new StatusExchange({ node: this.#node, records: this.#records, log: this.#log });
  }

  /** Serves our status on STATUS_PROTOCOL and starts re-providing and status refresh. The node must be started. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#stop = new AbortController();
    await this.#exchange.start();
    this.#timers.push(
      setInterval(() => {
        for (const type of this.#advertised) {
          this.#provide(type).catch((err) =>
            this.#log.warn(`re-provide ${type} failed: ${err?.message ?? err}`),
          );
        }
      }, this.#reprovideInterval),
      setInterval(
        () => {
          if (this.#instances == null) return;
          this.publishStatus(this.#instances).catch((err) =>
            this.#log.warn(`status refresh failed: ${err?.message ?? err}`),
          );
        },
        Math.max(1000, this.#statusTtl / 2),
      ),
    );
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#stop.abort(new Error('discovery stopping'));
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#providers.clear();
    await this.#exchange.stop();
  }

  /** Publishes this host's signed status (instances and endpoints), valid for statusTtl. What does not fit
   *  one record is left out, Ready instances with endpoints kept first, and the record says so (`truncated`). */
  async publishStatus(
    instances: InstanceEndpoints[],
    options: OpOptions = {},
  ): Promise<RecordBody<HostStatus>> {
    const key = hostRecordKey(this.#node.peerId.toString());
    const status = this.#fit(key, instances);
    if (!checkStatus(status)) throw new TypeError(`host status: ${statusErrors()}`);
    const { record } = await this.#records.publishRecord('host', key, status, {
      ...options,
      ttl: this.#statusTtl,
    });
    this.#instances = instances;
    this.#exchange.own = await this.#node.getLocalRecord(new TextEncoder().encode(key));
    return record;
  }

  /** The host status that fits one record (see record-fit.ts). */
  #fit(key: string, instances: InstanceEndpoints[]): HostStatus {
    const { n, total: length, payload } = fitHostStatus(key, this.#node.peerId.toString(), instances);
    const note = payload.truncated ? JSON.stringify(payload.truncated) : '';
    if (note !== this.#lastTruncation) {
      this.#lastTruncation = note;
      if (payload.truncated)
        this.#log.warn(
          `host record lists ${n} of ${length} instances and leaves out ` +
            `${payload.truncated.endpoints} endpoint(s): the rest do not fit one ${MAX_RECORD_BYTES}-byte DHT record`,
        );
    }
    return payload;
  }

  /** Announces this host as a provider of `serviceType` now and on every re-provide. */
  async advertise(serviceType: string, options: OpOptions = {}): Promise<void> {
    await serviceCid(serviceType); // validates the name before we remember it
    this.#advertised.add(serviceType);
    await this.#provide(serviceType, options);
  }

  /** Stops re-providing `serviceType` (existing provider records expire on their own; discover filters them). */
  async unadvertise(serviceType: string): Promise<void> {
    this.#advertised.delete(serviceType);
    await this.#node.cancelProvide(await serviceCid(serviceType)).catch(() => {});
  }

  get advertised(): string[] {
    return [...this.#advertised];
  }

  async #provide(serviceType: string, options: OpOptions = {}): Promise<void> {
    await this.#node.provide(await serviceCid(serviceType), this.#opts(options));
  }

  #opts(options: OpOptions): OpOptions {
    const signal =
      options.signal == null ? this.#stop.signal : AbortSignal.any([options.signal, this.#stop.signal]);
    return { ...options, signal };
  }

  /** Provider records for `serviceType` as found (they may be stale: see discover). */
  async *findProviders(
    serviceType: string,
    options: OpOptions & { quorum?: number } = {},
  ): AsyncGenerator<ProviderPeer> {
    yield* this.#node.findProviders(await serviceCid(serviceType), options);
  }

  /**
   * Hosts that run a ready instance of `serviceType`, with its endpoints, checked against each provider's fresh
   * signed status record (fetched directly from the provider, or from the DHT when it cannot be reached).
   * Returns once the first answer's providers are checked (see DiscoverOptions.quorum), or at once from the
   * providers verified by a recent discover of the type (see DiscoveryInit.providerCacheTtl).
   */
  async discover(serviceType: string, options: DiscoverOptions = {}): Promise<DiscoveredHost[]> {
    await serviceCid(serviceType); // a bad name is a TypeError on every path
    const cached = this.#providers.get(serviceType);
    const age = cached == null ? Number.POSITIVE_INFINITY : Date.now() - cached.at;
    if (options.quorum == null && cached != null && cached.peers.size > 0 && age < this.#providerCacheTtl) {
      if (age >= this.#providerCacheTtl / 4) this.#refreshInBackground(serviceType);
      const peers = [...cached.peers.values()];
      const self = this.#self();
      if (this.#advertised.has(serviceType) && !cached.peers.has(self.peerId)) peers.push(self);
      return this.#collect(serviceType, peers, options, { replace: false });
    }
    return this.#fromDht(serviceType, options);
  }

  #self(): ProviderPeer {
    return { peerId: this.#node.peerId.toString(), multiaddrs: this.#node.multiaddrs };
  }

  /** Asks the DHT for the type's providers, checks them as they arrive, and remembers the ones that verified. */
  async #fromDht(serviceType: string, options: DiscoverOptions): Promise<DiscoveredHost[]> {
    // Our own provider store answers first; when we provide the type it may list only us: wait for one more.
    const quorum = options.quorum ?? (this.#advertised.has(serviceType) ? 2 : 1);
    const self = this.#self();
    const providers = async function* (this: Discovery, signal: AbortSignal): AsyncGenerator<ProviderPeer> {
      if (options.quorum == null) {
        const key = (await serviceCid(serviceType)).multihash.bytes;
        const listed = yield* askNearest(this.#node, key, { ...options, signal });
        if (listed.size > 0) {
          if (this.#advertised.has(serviceType) && !listed.has(self.peerId)) yield self;
          return;
        }
        // nobody near the key listed a provider: run the DHT query
      }
      yield* this.findProviders(serviceType, { ...options, signal, quorum });
    };
    return this.#collect(
      serviceType,
      (signal) => providers.call(this, signal),
      options,
      { replace: options.limit == null }, // with a limit the answer may be a part of the list
    );
  }

  /**
   * Checks each provider as it comes (all at once), stops early at `limit`, and records the verified ones in the
   * provider cache (`replace`: the result is the whole list; otherwise only drop the providers that failed).
   */
  async #collect(
    serviceType: string,
    providers: Iterable<ProviderPeer> | ((signal: AbortSignal) => AsyncIterable<ProviderPeer>),
    options: DiscoverOptions,
    { replace }: { replace: boolean },
  ): Promise<DiscoveredHost[]> {
    const done = new AbortController();
    const signal = AbortSignal.any([done.signal, ...(options.signal ? [options.signal] : [])]);
    const opts = { ...options, signal };
    const found: DiscoveredHost[] = [];
    const failed: string[] = [];
    const pending: Promise<void>[] = [];
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const source = typeof providers === 'function' ? providers(signal) : providers;
    try {
      for await (const provider of source) {
        pending.push(
          this.#check(provider, serviceType, opts).then(
            (host) => {
              if (host == null) failed.push(provider.peerId);
              else if (found.length < limit) found.push(host);
              if (found.length >= limit) done.abort();
            },
            (err) => {
              if (signal.aborted) return; // stopped at the limit or by the caller: not the provider's fault
              failed.push(provider.peerId);
              this.#log.info(
                `discover ${serviceType}: provider ${provider.peerId} skipped: ${err?.message ?? err}`,
              );
            },
          ),
        );
        if (found.length >= limit) break;
      }
    } catch (err) {
      if (!done.signal.aborted) throw err;
    }
    await Promise.all(pending);
    if (options.signal?.aborted) throw options.signal.reason;
    this.#remember(serviceType, found, failed, replace);
    return found;
  }

  #remember(serviceType: string, found: DiscoveredHost[], failed: string[], replace: boolean): void {
    if (this.#providerCacheTtl <= 0 || !this.#running) return;
    const entry = this.#providers.get(serviceType);
    const peers = replace || entry == null ? new Map<string, ProviderPeer>() : entry.peers;
    for (const id of failed) peers.delete(id);
    for (const h of found) peers.set(h.peerId, { peerId: h.peerId, multiaddrs: h.multiaddrs });
    if (peers.size === 0) this.#providers.delete(serviceType);
    else this.#providers.set(serviceType, { peers, at: entry != null && !replace ? entry.at : Date.now() });
  }

  /** One background DHT read of the type's providers at a time; its result replaces the cached list. */
  #refreshInBackground(serviceType: string): void {
    if (this.#refreshing.has(serviceType)) return;
    this.#refreshing.add(serviceType);
    this.#fromDht(serviceType, { signal: this.#stop.signal })
      .catch((err) => {
        if (!this.#stop.signal.aborted)
          this.#log.warn(`refreshing providers of ${serviceType} failed: ${err?.message ?? err}`);
      })
      .finally(() => this.#refreshing.delete(serviceType));
  }

  async #check(
    provider: ProviderPeer,
    serviceType: string,
    options: OpOptions,
  ): Promise<DiscoveredHost | undefined> {
    const record = await this.#exchange.statusOf(provider, options);
    const now = Date.now();
    if (record.expiresAt == null && now - record.issuedAt > this.#statusMaxAge) return undefined;
    if (!checkStatus(record.payload)) return undefined;
    const instances = record.payload.instances.filter(
      (i) => i.serviceType === serviceType && i.ready && i.endpoints.length > 0,
    );
    if (instances.length === 0) return undefined;
    return {
      peerId: provider.peerId,
      multiaddrs: provider.multiaddrs,
      instances,
      seq: record.seq,
      expiresAt: record.expiresAt,
      ...(record.payload.truncated ? { truncated: record.payload.truncated } : {}),
    };
  }
}
