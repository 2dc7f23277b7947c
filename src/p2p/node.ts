// XenosNode: the libp2p overlay a xenosd host runs. TCP + private network (cluster key) + Noise + Yamux,
// identify, ping and a Kademlia DHT under the `/xenos` protocol prefix that keeps private and loopback
// addresses (hosts of one cluster usually share a LAN; kad-dht.ts holds everything that knows kad-dht). It owns the host's persistent peer identity, dials the
// bootstrap peers until connected, writes its listen addresses to DATA_DIR/p2p.addrs, and exposes DHT
// put/get/provide/findProviders (each abortable, each with a timeout) and direct stream protocols: it is the
// DhtClient (dht-client.ts) that discovery and the record publisher are given.
// Over 400 lines because it is the one class that owns the libp2p node's life; kad-dht's internals are in
// kad-dht.ts.

import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import type {
  ConnectionProtector,
  Libp2p,
  PeerId,
  PrivateKey,
  Stream,
  StreamHandler,
  StreamHandlerOptions,
} from '@libp2p/interface';
import type { KadDHT, SelectFn, ValidateFn } from '@libp2p/kad-dht';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { MemoryDatastore } from 'datastore-core';
import { createLibp2p } from 'libp2p';
import type { CID } from 'multiformats/cid';
import { type Log, silentLogger } from '../log/logger.ts';
import type { DhtMetrics } from '../metrics/host-metrics.ts';
import type { RefusalCounter } from '../metrics/refusals.ts';
import { bootstrap } from './bootstrap.ts';
import type { DhtClient, OpOptions, ProviderPeer } from './dht-client.ts';
import { NotStartedError } from './errors.ts';
import { type AddressMapper, KadDht, kadService } from './kad-dht.ts';
import { DEFAULT_ALLOW, listenMultiaddr } from './listen-address.ts';
import { loadOrCreatePeerKey, PEER_KEY_FILE } from './peer-key.ts';
import { type ClusterKey, createClusterKey, loadClusterKey } from './pnet/cluster-key.ts';
import { clusterProtector, type HandshakeRefusalReason, handshakeRefusalCounter } from './pnet/protector.ts';
import {
  RECORD_NAMESPACE,
  type RecordRefusalReason,
  recordRefusalCounter,
  recordSelector,
  recordValidator,
} from './records.ts';
import { guardYamuxWindowUpdates } from './yamux-guard.ts';

export const ADDRS_FILE = 'p2p.addrs';

const DEFAULT_DHT_TIMEOUT = 10_000;
const DEFAULT_DIAL_TIMEOUT = 5_000;
const DEFAULT_BACKOFF_INITIAL = 200;
const DEFAULT_BACKOFF_MAX = 10_000;

export interface XenosNodeComponents {
  /** The host's Ed25519 identity (see loadOrCreatePeerKey). */
  privateKey: PrivateKey;
  /** The cluster key; null runs an open network (for tests of the open case only). */
  clusterKey: ClusterKey | null;
  /** Where diagnostics go; defaults to nothing. */
  log?: Log;
}

export interface XenosNodeInit {
  /** DATA_DIR: p2p.addrs is written here once listening. */
  dataDir: string;
  /** `HOST:PORT` (the `--p2p` flag); port 0 picks a free port. IPv6 as `[::1]:0`. */
  listen: string;
  /** Multiaddrs (with /p2p/<peerId>) to dial at start and whenever the node has no connection left. */
  bootstrap?: string[];
  /** Which addresses of other peers the DHT keeps. Default 'passthrough' (keeps loopback and private ones). */
  addressMapper?: AddressMapper;
  /** Connection-manager allow list (multiaddrs, /ipcidr ok). Default DEFAULT_ALLOW. */
  allow?: string[];
  /** New inbound connections a second per remote address (not on the allow list). Default 10: with the
   *  2 s handshake timeout one address can hold at most 20 of the 100 pending slots. */
  inboundConnectionThreshold?: number;
  maxIncomingPendingConnections?: number;
  /** The cluster-key handshake (nonces and key confirmation) must finish within this (ms). Default 2000. */
  handshakeTimeoutMs?: number;
  /** Where connections refused at the handshake are counted; by default the node's own counter. Give one
   *  when `connectionProtector` wraps clusterProtector, and pass it there too. */
  handshakeRefusals?: RefusalCounter<HandshakeRefusalReason>;
  /** DHT queries' results and latency go here (the host's /metrics). */
  metrics?: DhtMetrics;
  maxConnections?: number;
  /** Extra DHT namespaces (`/ns/...` keys) with their validators and selectors. `xenos` is always installed. */
  validators?: Record<string, ValidateFn>;
  selectors?: Record<string, SelectFn>;
  /** ms before the first DHT self-query (libp2p default 1000). Default 0: ready for queries at once. */
  initialQuerySelfInterval?: number;
  /** Default timeout of a DHT operation in ms. */
  dhtTimeout?: number;
  /** Per-dial timeout of a bootstrap dial. */
  dialTimeout?: number;
  /** Bootstrap retry backoff (ms): starts at `initial`, doubles up to `max`. */
  backoff?: { initial?: number; max?: number };
  /** Replace the connection protector (xenosd wraps ours to inject faults in tests). */
  connectionProtector?: (psk: Uint8Array) => () => ConnectionProtector;
}

type Node = Libp2p<{ dht: KadDHT; identify: unknown; ping: unknown }>;

/**
 * Loads (or creates) the host identity in DATA_DIR/p2p.key and the cluster key, and returns an unstarted node.
 * `clusterKeyFile`: null for an open network; `createClusterKey: true` creates the key when missing (the first
 * host of a cluster), otherwise a missing key is an error (a joining host must be given the cluster's key).
 */
export async function openXenosNode(
  init: XenosNodeInit & {
    clusterKeyFile: string | null;
    createClusterKey?: boolean;
    log?: Log;
  },
): Promise<XenosNode> {
  const { privateKey } = await loadOrCreatePeerKey(join(init.dataDir, PEER_KEY_FILE));
  let clusterKey: ClusterKey | null = null;
  if (init.clusterKeyFile != null) {
    clusterKey =
      init.createClusterKey === true
        ? await createClusterKey(init.clusterKeyFile)
        : await loadClusterKey(init.clusterKeyFile);
  }
  return new XenosNode({ privateKey, clusterKey, log: init.log }, init);
}

export class XenosNode extends EventTarget implements DhtClient {
  readonly peerId: PeerId;
  /** `/xenos/...` DHT records this node's validator refused (peers' puts and its own), by reason. */
  readonly recordRefusals: RefusalCounter<RecordRefusalReason>;
  /** Connections refused at the cluster-key handshake, by reason. */
  readonly handshakeRefusals: RefusalCounter<HandshakeRefusalReason>;
  readonly #components: XenosNodeComponents;
  readonly #init: XenosNodeInit;
  readonly #datastore = new MemoryDatastore();
  readonly #validators: Record<string, ValidateFn>;
  readonly #kad: KadDht;
  #node: Node | undefined;
  #starting: Promise<void> | undefined;
  #stop = new AbortController();
  #bootstrapping = false;
  #joined = Promise.withResolvers<void>();

  readonly #log: Log;

  constructor(components: XenosNodeComponents, init: XenosNodeInit) {
    super();
    this.#components = components;
    this.#init = init;
    this.peerId = peerIdFromPrivateKey(components.privateKey);
    this.#log = (components.log ?? silentLogger.root).child({ peer: this.peerId.toString() });
    this.recordRefusals = recordRefusalCounter(this.#log);
    this.handshakeRefusals = init.handshakeRefusals ?? handshakeRefusalCounter(this.#log);
    this.#validators = {
      ...init.validators,
      [RECORD_NAMESPACE]: recordValidator({
        getStored: (key) => this.getLocalRecord(key),
        refusals: this.recordRefusals,
      }),
    };
    this.#kad = new KadDht(
      {
        dht: () => this.libp2p.services.dht,
        connected: () => this.#node?.getPeers() ?? [],
        datastore: this.#datastore,
        metrics: init.metrics,
      },
      { validators: this.#validators },
    );
  }

  get started(): boolean {
    return this.#node != null;
  }

  /** The underlying libp2p node, for what this class does not wrap. Throws before start(). */
  get libp2p(): Node {
    if (this.#node == null) throw new NotStartedError('libp2p');
    return this.#node;
  }

  /** Listen addresses with /p2p/<peerId>. */
  get multiaddrs(): string[] {
    return this.#node?.getMultiaddrs().map((ma) => ma.toString()) ?? [];
  }

  /** Peers in the DHT routing table. */
  get routingTableSize(): number {
    return this.#node == null ? 0 : this.#kad.routingTableSize;
  }

  /** Peer IDs of currently connected peers. */
  connectedPeers(): string[] {
    return this.#node?.getPeers().map((p) => p.toString()) ?? [];
  }

  async start(): Promise<void> {
    if (this.#node != null) return;
    this.#starting ??= this.#start().finally(() => {
      this.#starting = undefined;
    });
    await this.#starting;
  }

  async #start(): Promise<void> {
    const init = this.#init;
    const { clusterKey, privateKey } = this.#components;
    this.#stop = new AbortController();
    this.#joined = Promise.withResolvers<void>();
    if ((init.bootstrap ?? []).length === 0) this.#joined.resolve();
    const makeProtector =
      init.connectionProtector ??
      ((psk: Uint8Array) =>
        clusterProtector({ psk, timeout: init.handshakeTimeoutMs, refusals: this.handshakeRefusals }));
    guardYamuxWindowUpdates();
    const node = (await createLibp2p({
      privateKey,
      datastore: this.#datastore,
      addresses: { listen: [listenMultiaddr(init.listen).toString()] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // Liveness is SWIM's job (src/p2p/membership): libp2p's own monitor pings every connection every
      // 10 s and aborts it when a ping fails, and under load its second ping meets the first still open
      // ("Too many outbound protocol streams for /ipfs/ping"), so it was cutting healthy connections.
      connectionMonitor: { enabled: false },
      ...(clusterKey == null ? {} : { connectionProtector: makeProtector(clusterKey.swarmKey) }),
      connectionManager: {
        allow: init.allow ?? DEFAULT_ALLOW,
        inboundConnectionThreshold: init.inboundConnectionThreshold ?? 10,
        maxIncomingPendingConnections: init.maxIncomingPendingConnections ?? 100,
        maxConnections: init.maxConnections ?? 300,
      },
      services: {
        identify: identify(),
        ping: ping(),
        dht: kadService({
          addressMapper: init.addressMapper,
          initialQuerySelfInterval: init.initialQuerySelfInterval,
          validators: this.#validators,
          selectors: { ...init.selectors, [RECORD_NAMESPACE]: recordSelector },
        }),
      },
    })) as unknown as Node;
    node.addEventListener('peer:connect', (evt) => this.#emit('peer:connect', evt.detail.toString()));
    node.addEventListener('peer:disconnect', (evt) => {
      this.#emit('peer:disconnect', evt.detail.toString());
      if (node.getPeers().length === 0) this.#bootstrap(node);
    });
    this.#node = node;
    await this.#writeAddrs();
    this.#bootstrap(node);
  }

  async stop(): Promise<void> {
    await this.#starting?.catch(() => {});
    const node = this.#node;
    if (node == null) return;
    this.#stop.abort(new Error('p2p node stopping'));
    this.#node = undefined;
    await node.stop();
  }

  #emit(type: 'peer:connect' | 'peer:disconnect', peerId: string): void {
    this.dispatchEvent(new CustomEvent(type, { detail: peerId }));
  }

  async #writeAddrs(): Promise<void> {
    const file = join(this.#init.dataDir, ADDRS_FILE);
    const tmp = `${file}.tmp`;
    await writeFile(tmp, this.multiaddrs.map((a) => `${a}\n`).join(''));
    await rename(tmp, file);
  }

  /** Dials every bootstrap address in the background, retrying with backoff until one is up, then joins. */
  #bootstrap(node: Node): void {
    const addrs = this.#init.bootstrap ?? [];
    if (addrs.length === 0 || this.#bootstrapping || this.#stop.signal.aborted) return;
    this.#bootstrapping = true;
    const signal = this.#stop.signal;
    bootstrap(
      { libp2p: node, dht: this.#kad, log: this.#log },
      {
        addrs,
        dialTimeout: this.#dialTimeout,
        joinTimeout: this.#init.dhtTimeout ?? DEFAULT_DHT_TIMEOUT,
        backoff: {
          initial: this.#init.backoff?.initial ?? DEFAULT_BACKOFF_INITIAL,
          max: this.#init.backoff?.max ?? DEFAULT_BACKOFF_MAX,
        },
      },
      signal,
    )
      .then(() => this.#joined.resolve())
      .catch((err) => {
        if (!signal.aborted) this.#log.error({ err }, `bootstrap failed: ${err?.message ?? err}`);
      })
      .finally(() => {
        this.#bootstrapping = false;
      });
  }

  get #dialTimeout(): number {
    return this.#init.dialTimeout ?? DEFAULT_DIAL_TIMEOUT;
  }

  /** A signal that ends at the caller's signal, the timeout, or stop(). */
  #signal(options: OpOptions = {}): AbortSignal {
    const parts = [
      this.#stop.signal,
      AbortSignal.timeout(options.timeout ?? this.#init.dhtTimeout ?? DEFAULT_DHT_TIMEOUT),
    ];
    if (options.signal != null) parts.push(options.signal);
    return AbortSignal.any(parts);
  }

  /**
   * Resolves once the node has joined the DHT through a bootstrap peer (at once without bootstrap peers).
   * Queries made before that may find nothing: wait for this before the first discover of a fresh host.
   */
  async joined(options: OpOptions = {}): Promise<void> {
    const signal = this.#signal(options);
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#joined.promise.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** Dials a peer (multiaddr string or peer ID string) and resolves once connected. */
  async dial(target: string, options: OpOptions = {}): Promise<void> {
    const to = target.startsWith('/') ? multiaddr(target) : peerIdFromString(target);
    await this.libp2p.dial(to, { signal: this.#signal({ timeout: this.#dialTimeout, ...options }) });
  }

  /** See RecordStore.dhtPut (validated with this node's own validator first). */
  async dhtPut(key: Uint8Array, value: Uint8Array, options: OpOptions = {}): Promise<number> {
    return this.#kad.put(key, value, this.#signal(options));
  }

  /** The best valid value for `key` in the DHT (own store included), or undefined when no peer has one. */
  async dhtGet(key: Uint8Array, options: OpOptions = {}): Promise<Uint8Array | undefined> {
    return this.#kad.get(key, this.#signal(options));
  }

  /** The record value this node itself stores for `key` (what it would answer a GET with), unvalidated. */
  async getLocalRecord(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.#kad.localRecord(key);
  }

  /** Announces this node as a provider of `cid` to the closest peers. */
  async provide(cid: CID, options: OpOptions = {}): Promise<void> {
    await this.#kad.provide(cid, this.#signal(options));
  }

  async cancelProvide(cid: CID): Promise<void> {
    if (this.#node != null) await this.#kad.cancelProvide(cid);
  }

  /**
   * Providers of `cid` as they are found (deduplicated; this node included when it provides). `quorum`: stop the
   * query once that many peers (this node's own store counts as one) have answered with provider lists, instead of
   * asking every peer near the key; each of the k closest peers holds the whole list, so a few answers suffice.
   */
  findProviders(cid: CID, options: OpOptions & { quorum?: number } = {}): AsyncGenerator<ProviderPeer> {
    return this.#kad.findProviders(cid, this.#signal(options), options.quorum ?? Number.POSITIVE_INFINITY);
  }

  async nearestPeers(key: Uint8Array, options: { count: number; connected?: boolean }): Promise<PeerId[]> {
    if (this.#node == null) return [];
    return this.#kad.nearestPeers(key, options);
  }

  async askProviders(
    peer: PeerId,
    key: Uint8Array,
    options: { signal: AbortSignal },
  ): Promise<ProviderPeer[]> {
    return this.#kad.askProviders(peer, key, options.signal);
  }

  async askValue(
    peer: PeerId,
    key: Uint8Array,
    options: { signal: AbortSignal },
  ): Promise<Uint8Array | undefined> {
    return this.#kad.askValue(peer, key, options.signal);
  }

  /** Registers a handler for a direct stream protocol (state sync, image chunks, migration). */
  async handle(protocol: string, handler: StreamHandler, options?: StreamHandlerOptions): Promise<void> {
    await this.libp2p.handle(protocol, handler, options);
  }

  async unhandle(protocol: string): Promise<void> {
    await this.#node?.unhandle(protocol);
  }

  /** Opens a stream to `peer` (peer ID or multiaddr string) speaking `protocol`. */
  async dialProtocol(peer: string, protocol: string, options: OpOptions = {}): Promise<Stream> {
    const to = peer.startsWith('/') ? multiaddr(peer) : peerIdFromString(peer);
    return this.libp2p.dialProtocol(to, protocol, {
      signal: this.#signal({ timeout: this.#dialTimeout, ...options }),
    });
  }
}
