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

import { setTimeout as sleep } from 'node:timers/promises';
import type { PeerId, Stream } from '@libp2p/interface';
import type { QueryEvent } from '@libp2p/kad-dht';
import { lpStream } from '@libp2p/utils';
import { Ajv } from 'ajv';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';
import { type Log, silentLogger } from '../log/logger.ts';
import type { OpOptions, ProviderPeer, XenosNode } from './node.ts';
import {
  clampEndpoints,
  fitRecord,
  MAX_ENDPOINT_CHARS,
  MAX_ENTRY_ENDPOINTS,
  type Truncation,
} from './record-fit.ts';
import type { RecordPublisher } from './record-publisher.ts';
import { hostRecordKey, MAX_RECORD_BYTES, type RecordBody, verifyRecord } from './records.ts';

export const STATUS_PROTOCOL = '/xenos/status/1.0.0';
const DEFAULT_REPROVIDE_INTERVAL = 10 * 60_000;
const DEFAULT_STATUS_TTL = 60_000;
const DEFAULT_STATUS_MAX_AGE = 5 * 60_000;
const DEFAULT_PROVIDER_CACHE_TTL = 10_000;
/** How many of the closest routing-table peers `discover` asks directly before running the DHT query. */
const NEAREST_ASKED = 3;
const SERVICE_TYPE = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;

export interface InstanceEndpoints {
  namespace: string;
  name: string;
  serviceType: string;
  /** `host:port` or URLs, as the instance registered them. */
  endpoints: string[];
  ready: boolean;
}

export interface HostStatus {
  instances: InstanceEndpoints[];
  /** What the publisher left out to fit the record (record-fit.ts); absent when nothing was. */
  truncated?: Truncation;
}

export interface DiscoveredHost {
  peerId: string;
  /** The provider's libp2p addresses (for direct streams: image chunks, migration). */
  multiaddrs: string[];
  /** Ready instances of the requested type, with endpoints, from a verified fresh status record. */
  instances: InstanceEndpoints[];
  /** seq and expiry of the status record the answer was read from. */
  seq: number;
  expiresAt?: number;
  /** The host's record did not hold all its instances or endpoints (too many for one record). */
  truncated?: Truncation;
}

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

const ajv = new Ajv({ strict: true });
const checkStatus = ajv.compile<HostStatus>({
  type: 'object',
  required: ['instances'],
  additionalProperties: true,
  properties: {
    instances: {
      type: 'array',
      maxItems: 512,
      items: {
        type: 'object',
        required: ['namespace', 'name', 'serviceType', 'endpoints', 'ready'],
        additionalProperties: true,
        properties: {
          namespace: { type: 'string', maxLength: 63 },
          name: { type: 'string', maxLength: 253 },
          serviceType: { type: 'string', maxLength: 253 },
          endpoints: {
            type: 'array',
            maxItems: MAX_ENTRY_ENDPOINTS,
            items: { type: 'string', maxLength: MAX_ENDPOINT_CHARS },
          },
          ready: { type: 'boolean' },
        },
      },
    },
    truncated: {
      type: 'object',
      required: ['instances', 'endpoints'],
      properties: {
        instances: { type: 'integer', minimum: 0 },
        endpoints: { type: 'integer', minimum: 0 },
      },
    },
  },
});

/** The DHT content ID a service type is advertised under. */
export async function serviceCid(serviceType: string): Promise<CID> {
  if (!SERVICE_TYPE.test(serviceType)) {
    throw new TypeError(
      `service type ${JSON.stringify(serviceType)}: use lower-case letters, digits, '-' and '.' (like a DNS name)`,
    );
  }
  const digest = await sha256.digest(new TextEncoder().encode(`/xenos/svc/${serviceType}`));
  return CID.createV1(raw.code, digest);
}

export interface DiscoveryComponents {
  node: XenosNode;
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

/**
 * The parts of kad-dht 16's implementation the direct ask uses; they are not in its public interface, so each is
 * checked at run time and discover falls back to the plain query without them.
 */
interface KadInternals {
  routingTable?: { closestPeers?: (kadId: Uint8Array, options?: { count?: number }) => PeerId[] };
  network?: {
    sendRequest?: (
      to: PeerId,
      message: { type: 'GET_PROVIDERS' | 'GET_VALUE'; key: Uint8Array },
      options: {
        signal?: AbortSignal;
        path: { index: number; queued: number; running: number; total: number };
      },
    ) => AsyncIterable<QueryEvent>;
  };
}

/** Providers of one type that verified, and when the list was last read from the DHT. */
interface CachedProviders {
  peers: Map<string, ProviderPeer>;
  at: number;
}

export class Discovery {
  readonly #node: XenosNode;
  readonly #records: RecordPublisher;
  readonly #log: Log;
  readonly #reprovideInterval: number;
  readonly #statusTtl: number;
  readonly #statusMaxAge: number;
  readonly #providerCacheTtl: number;
  readonly #providers = new Map<string, CachedProviders>();
  readonly #refreshing = new Set<string>();
  readonly #peerKadIds = new Map<string, Uint8Array>();
  readonly #advertised = new Set<string>();
  /** What publishStatus was last given (the refresh publishes it again). */
  #instances: InstanceEndpoints[] | undefined;
  #statusBytes: Uint8Array | undefined;
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
  }

  /** Serves our status on STATUS_PROTOCOL and starts re-providing and status refresh. The node must be started. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#stop = new AbortController();
    await this.#node.handle(STATUS_PROTOCOL, (stream) => this.#serveStatus(stream));
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
    await this.#node.unhandle(STATUS_PROTOCOL);
  }

  /** Publishes this host's signed status (instances and endpoints), valid for statusTtl. What does not fit
   *  one record is left out, Ready instances with endpoints kept first, and the record says so (`truncated`). */
  async publishStatus(
    instances: InstanceEndpoints[],
    options: OpOptions = {},
  ): Promise<RecordBody<HostStatus>> {
    const key = hostRecordKey(this.#node.peerId.toString());
    const status = this.#fit(key, instances);
    if (!checkStatus(status))
      throw new TypeError(`host status: ${ajv.errorsText(checkStatus.errors, { dataVar: 'status' })}`);
    const { record } = await this.#records.publishRecord('host', key, status, {
      ...options,
      ttl: this.#statusTtl,
    });
    this.#instances = instances;
    this.#statusBytes = await this.#node.getLocalRecord(new TextEncoder().encode(key));
    return record;
  }

  /** The host status that fits one record (see record-fit.ts). */
  #fit(key: string, instances: InstanceEndpoints[]): HostStatus {
    let endpointsOmitted = 0;
    const entries = instances
      .map((i) => {
        const { endpoints, omitted } = clampEndpoints(i.endpoints);
        endpointsOmitted += omitted;
        return { ...i, endpoints };
      })
      .map((entry, index) => ({ entry, index, rank: entry.ready && entry.endpoints.length > 0 ? 0 : 1 }))
      .sort((x, y) => x.rank - y.rank || x.index - y.index)
      .map(({ entry }) => entry);
    const { n, payload } = fitRecord('host', key, this.#node.peerId.toString(), entries.length, (n) => {
      const truncated = { instances: entries.length - n, endpoints: endpointsOmitted };
      const status: HostStatus = { instances: entries.slice(0, n) };
      if (truncated.instances > 0 || truncated.endpoints > 0) status.truncated = truncated;
      return status;
    });
    const note = payload.truncated ? JSON.stringify(payload.truncated) : '';
    if (note !== this.#lastTruncation) {
      this.#lastTruncation = note;
      if (payload.truncated)
        this.#log.warn(
          `host record lists ${n} of ${entries.length} instances and leaves out ` +
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
    await this.#node.libp2p.services.dht.cancelReprovide(await serviceCid(serviceType)).catch(() => {});
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
        const listed = yield* this.#askNearest(serviceType, { ...options, signal });
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

  /**
   * The NEAREST_ASKED peers closest to `key` among the routing table and the connected peers (only connected
   * ones, with `connected`), and a
   * sender of one DHT request to one of them, all ended by `done` (or the caller's signal, or the timeout).
   * undefined when there is none, or kad-dht lacks the parts used.
   */
  async #nearest(
    key: Uint8Array,
    options: OpOptions,
    { connected = false }: { connected?: boolean } = {},
  ): Promise<
    | {
        peers: PeerId[];
        send: (
          peer: PeerId,
          index: number,
          message: { type: 'GET_PROVIDERS' | 'GET_VALUE'; key: Uint8Array },
        ) => AsyncIterable<QueryEvent>;
        done: AbortController;
      }
    | undefined
  > {
    const kad = this.#node.libp2p.services.dht as unknown as KadInternals;
    const closestPeers = kad.routingTable?.closestPeers?.bind(kad.routingTable);
    const sendRequest = kad.network?.sendRequest?.bind(kad.network);
    if (closestPeers == null || sendRequest == null) return undefined;
    const kadId = await kadIdOf(key);
    // The routing table learns a peer only after identify on its connection, so a host that has just started
    // may know none yet while it is connected to many: the connected peers are candidates too.
    const live = this.#node.libp2p.getPeers();
    const open = new Set(live.map((p) => p.toString()));
    const candidates = new Map<string, PeerId>();
    for (const p of [...closestPeers(kadId, { count: 20 }), ...live]) {
      if (!connected || open.has(p.toString())) candidates.set(p.toString(), p);
    }
    const distances = await Promise.all(
      [...candidates.values()].map(async (p) => ({ p, d: xor(kadId, await this.#kadIdOfPeer(p)) })),
    );
    const peers = distances
      .sort((x, y) => Buffer.compare(x.d, y.d))
      .slice(0, NEAREST_ASKED)
      .map(({ p }) => p);
    if (peers.length === 0) return undefined;
    const done = new AbortController();
    const signal = AbortSignal.any([
      done.signal,
      AbortSignal.timeout(options.timeout ?? 5000),
      ...(options.signal ? [options.signal] : []),
    ]);
    const send = (
      peer: PeerId,
      index: number,
      message: { type: 'GET_PROVIDERS' | 'GET_VALUE'; key: Uint8Array },
    ): AsyncIterable<QueryEvent> =>
      sendRequest(peer, message, { signal, path: { index, queued: 0, running: 0, total: peers.length } });
    return { peers, send, done };
  }

  /** A peer's Kademlia ID (sha256 of its multihash), remembered while discovery runs. */
  async #kadIdOfPeer(peer: PeerId): Promise<Uint8Array> {
    const id = peer.toString();
    let kadId = this.#peerKadIds.get(id);
    if (kadId == null) {
      kadId = await kadIdOf(peer.toMultihash().bytes);
      if (this.#peerKadIds.size >= 4096) this.#peerKadIds.clear();
      this.#peerKadIds.set(id, kadId);
    }
    return kadId;
  }

  /**
   * A provider's host record from the connected peers nearest its key (GET_VALUE, one round trip on an open
   * connection): the first copy that verifies. The provider puts each new record to those peers before it
   * serves it, so this is as fresh as asking it, without a new connection's handshakes.
   */
  async #recordFromNearest(key: string, options: OpOptions): Promise<RecordBody<unknown>> {
    const keyBytes = new TextEncoder().encode(key);
    const near = await this.#nearest(keyBytes, options, { connected: true });
    if (near == null) throw new Error('no connected peer near the key');
    const { peers, send, done } = near;
    try {
      return await Promise.any(
        peers.map(async (peer, index) => {
          for await (const event of send(peer, index, { type: 'GET_VALUE', key: keyBytes })) {
            if (event.name === 'PEER_RESPONSE' && event.record != null)
              return verifyRecord(key, event.record.value);
          }
          throw new Error(`${peer} has no copy of ${key}`);
        }),
      );
    } finally {
      done.abort();
    }
  }

  /**
   * GET_PROVIDERS to the NEAREST_ASKED peers closest to the type's key (see #nearest), all at once. Yields
   * the providers of each answer as it arrives (deduplicated); once one answer listed any, the others get as
   * long again as that one took (a slow or dead peer must not hold the answer back; one peer's list may miss a
   * provider whose ADD_PROVIDER it has not handled yet, so the others are heard when they come in time).
   * Returns the peer IDs listed (none also when kad-dht lacks the parts used).
   */
  async *#askNearest(serviceType: string, options: OpOptions): AsyncGenerator<ProviderPeer, Set<string>> {
    const seen = new Set<string>();
    const key = (await serviceCid(serviceType)).multihash.bytes;
    const near = await this.#nearest(key, options);
    if (near == null) return seen;
    const { peers, send, done } = near;
    const ask = async (peer: PeerId, index: number): Promise<ProviderPeer[]> => {
      for await (const event of send(peer, index, { type: 'GET_PROVIDERS', key })) {
        if (event.name === 'PEER_RESPONSE') {
          return event.providers.map((p) => ({
            peerId: p.id.toString(),
            multiaddrs: p.multiaddrs.map((m) => m.toString()),
          }));
        }
      }
      return [];
    };
    const started = performance.now();
    const waiting = new Map(
      peers.map((peer, i) => [
        i,
        ask(peer, i).then(
          (list) => ({ i, list }),
          () => ({ i, list: [] as ProviderPeer[] }),
        ),
      ]),
    );
    let grace: Promise<undefined> | undefined;
    try {
      while (waiting.size > 0) {
        const next = await Promise.race([...waiting.values(), ...(grace ? [grace] : [])]);
        if (next == null) break; // the others took too long
        waiting.delete(next.i);
        if (next.list.length > 0 && grace == null) {
          const wait = Math.max(10, performance.now() - started);
          grace = sleep(wait, undefined, { signal: done.signal }).catch(() => undefined);
        }
        for (const p of next.list) {
          if (seen.has(p.peerId)) continue;
          seen.add(p.peerId);
          yield p;
        }
      }
    } finally {
      done.abort();
    }
    if (options.signal?.aborted) throw options.signal.reason;
    return seen;
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
    const record = await this.#statusOf(provider, options);
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

  /**
   * The provider's verified status record: ours from memory, others' straight from them (or, while we have no
   * connection to them, from the connected peers near its key, whichever comes first), else from the DHT.
   */
  async #statusOf(provider: ProviderPeer, options: OpOptions): Promise<RecordBody<unknown>> {
    const key = hostRecordKey(provider.peerId);
    if (provider.peerId === this.#node.peerId.toString() && this.#statusBytes != null) {
      return verifyRecord(key, this.#statusBytes);
    }
    const connected = this.#node.connectedPeers().includes(provider.peerId);
    const direct = this.#requestStatus(provider, options).then((bytes) => verifyRecord(key, bytes));
    try {
      if (connected) return await direct;
      // Not connected yet: a new connection's handshakes cost more than a round trip to the peers near the
      // record's key, which we are connected to. Race both; the loser's work is dropped (the dial stays up).
      const local = new AbortController();
      const copy = this.#recordFromNearest(key, {
        ...options,
        signal: AbortSignal.any([local.signal, ...(options.signal ? [options.signal] : [])]),
      });
      direct.catch(() => {}); // its failure is Promise.any's to report
      copy.catch(() => {});
      try {
        return await Promise.any([direct, copy]);
      } catch (err: any) {
        throw err?.errors?.[0] ?? err;
      } finally {
        local.abort();
      }
    } catch (err: any) {
      if (options.signal?.aborted) throw err;
      this.#log.debug(
        `status of ${provider.peerId} not available directly (${err?.message ?? err}); asking the DHT`,
      );
      return this.#records.fetchRecord(key, options);
    }
  }

  async #requestStatus(provider: ProviderPeer, options: OpOptions): Promise<Uint8Array> {
    const target =
      this.#node.connectedPeers().includes(provider.peerId) || provider.multiaddrs.length === 0
        ? provider.peerId
        : withPeerId(provider.multiaddrs[0], provider.peerId);
    const stream = await this.#node.dialProtocol(target, STATUS_PROTOCOL, options);
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_RECORD_BYTES });
      const bytes = (await lp.read({ signal: options.signal })).subarray();
      if (bytes.byteLength === 0) throw new Error(`${provider.peerId} has no status record`);
      return bytes;
    } finally {
      stream.close(options).catch(() => {});
    }
  }

  /** One length-prefixed message with our status record bytes (empty when not published yet), then close. */
  #serveStatus(stream: Stream): void {
    lpStream(stream)
      .write(this.#statusBytes ?? new Uint8Array(0), { signal: AbortSignal.timeout(5000) })
      .then(() => stream.close({ signal: AbortSignal.timeout(5000) }))
      .catch((err) => {
        stream.abort(err);
        this.#log.warn(`serving status: ${err?.message ?? err}`);
      });
  }
}

/** kad-dht's position of a key or peer in the keyspace (its convertBuffer). */
async function kadIdOf(bytes: Uint8Array): Promise<Uint8Array> {
  return (await sha256.digest(bytes)).digest;
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

function withPeerId(addr: string, peerId: string): string {
  return addr.includes('/p2p/') ? addr : `${addr}/p2p/${peerId}`;
}
