// XenosNode: the libp2p overlay a xenosd host runs. TCP + private network (cluster key) + Noise + Yamux,
// identify, ping and a Kademlia DHT under the `/xenos` protocol prefix that keeps private and loopback
// addresses (hosts of one cluster usually share a LAN). It owns the host's persistent peer identity, dials the
// bootstrap peers until connected, writes its listen addresses to DATA_DIR/p2p.addrs, and exposes DHT
// put/get/provide/findProviders (each abortable, each with a timeout) and direct stream protocols.

import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import type {
  ConnectionProtector,
  Libp2p,
  PeerId,
  PeerInfo,
  PrivateKey,
  Stream,
  StreamHandler,
  StreamHandlerOptions,
} from '@libp2p/interface';
import {
  Record as DHTRecord,
  type KadDHT,
  kadDHT,
  passthroughMapper,
  type QueryEvent,
  removePrivateAddressesMapper,
  removePublicAddressesMapper,
  type SelectFn,
  type SingleKadDHT,
  type ValidateFn,
} from '@libp2p/kad-dht';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import { MemoryDatastore } from 'datastore-core';
import { Key } from 'interface-datastore';
import { createLibp2p } from 'libp2p';
import type { CID } from 'multiformats/cid';
import { toString as uint8ArrayToString } from 'uint8arrays/to-string';
import { type Log, silentLogger } from '../log/logger.ts';
import type { RefusalCounter } from '../metrics/refusals.ts';
import { ListenAddressError, NotStartedError } from './errors.ts';
import { loadOrCreatePeerKey, PEER_KEY_FILE } from './peer-key.ts';
import { type ClusterKey, createClusterKey, loadClusterKey } from './pnet/cluster-key.ts';
import { clusterProtector, type HandshakeRefusalReason, handshakeRefusalCounter } from './pnet/protector.ts';
import {
  RECORD_NAMESPACE,
  type RecordRefusalReason,
  recordRefusalCounter,
  recordSelector,
  recordValidator,
  verifyRecord,
} from './records.ts';

export const ADDRS_FILE = 'p2p.addrs';
export const DHT_PROTOCOL = '/xenos/kad/1.0.0';
const DHT_DATASTORE_PREFIX = '/dht';

const DEFAULT_DHT_TIMEOUT = 10_000;
const DEFAULT_DIAL_TIMEOUT = 5_000;
const DEFAULT_BACKOFF_INITIAL = 200;
const DEFAULT_BACKOFF_MAX = 10_000;
/** Loopback and the documentation/test ranges: never rate-limited, never refused for maxConnections. */
export const DEFAULT_ALLOW = [
  '/ip4/127.0.0.0/ipcidr/8',
  '/ip6/::1/ipcidr/128',
  '/ip4/192.0.2.0/ipcidr/24',
  '/ip4/198.18.0.0/ipcidr/15',
];

type AddressMapper = 'passthrough' | 'private-only' | 'public-only' | ((peer: PeerInfo) => PeerInfo);

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
  /** Replace the connection protector (tests compare ours with @libp2p/pnet's). */
  connectionProtector?: (psk: Uint8Array) => () => ConnectionProtector;
}

export interface OpOptions {
  signal?: AbortSignal;
  /** ms; defaults to the node's dhtTimeout. */
  timeout?: number;
}

export interface ProviderPeer {
  peerId: string;
  multiaddrs: string[];
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

/** Parses `HOST:PORT` into a TCP listen multiaddr. */
export function listenMultiaddr(value: string): Multiaddr {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim());
  const port = m == null ? Number.NaN : Number(m[3]);
  if (m == null || port > 65535) throw new ListenAddressError(value);
  if (m[1] != null) return multiaddr(`/ip6/${m[1]}/tcp/${port}`);
  const host = m[2];
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return multiaddr(`/ip4/${host}/tcp/${port}`);
  if (host === 'localhost') return multiaddr(`/ip4/127.0.0.1/tcp/${port}`);
  return multiaddr(`/dns/${host}/tcp/${port}`);
}

function mapperOf(choice: AddressMapper | undefined): (peer: PeerInfo) => PeerInfo {
  if (typeof choice === 'function') return choice;
  if (choice === 'private-only') return removePublicAddressesMapper;
  if (choice === 'public-only') return removePrivateAddressesMapper;
  return passthroughMapper;
}

export class XenosNode extends EventTarget {
  readonly peerId: PeerId;
  /** `/xenos/...` DHT records this node's validator refused (peers' puts and its own), by reason. */
  readonly recordRefusals: RefusalCounter<RecordRefusalReason>;
  /** Connections refused at the cluster-key handshake, by reason. */
  readonly handshakeRefusals: RefusalCounter<HandshakeRefusalReason>;
  readonly #components: XenosNodeComponents;
  readonly #init: XenosNodeInit;
  readonly #datastore = new MemoryDatastore();
  readonly #validators: Record<string, ValidateFn>;
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
    return (this.#node?.services.dht as unknown as SingleKadDHT | undefined)?.routingTable.size ?? 0;
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
    const node = (await createLibp2p({
      privateKey,
      datastore: this.#datastore,
      addresses: { listen: [listenMultiaddr(init.listen).toString()] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
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
        dht: kadDHT({
          protocol: DHT_PROTOCOL,
          clientMode: false,
          peerInfoMapper: mapperOf(init.addressMapper),
          datastorePrefix: DHT_DATASTORE_PREFIX,
          initialQuerySelfInterval: init.initialQuerySelfInterval ?? 0,
          allowQueryWithZeroPeers: true,
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

  /** Dials every bootstrap address in the background, retrying with backoff until one connection is up. */
  #bootstrap(node: Node): void {
    const addrs = (this.#init.bootstrap ?? []).map((a) => multiaddr(a));
    if (addrs.length === 0 || this.#bootstrapping || this.#stop.signal.aborted) return;
    this.#bootstrapping = true;
    const signal = this.#stop.signal;
    const initial = this.#init.backoff?.initial ?? DEFAULT_BACKOFF_INITIAL;
    const max = this.#init.backoff?.max ?? DEFAULT_BACKOFF_MAX;
    const run = async (): Promise<void> => {
      let delay = initial;
      while (!signal.aborted) {
        const results = await Promise.allSettled(
          addrs.map((ma) =>
            node.dial(ma, { signal: AbortSignal.any([signal, AbortSignal.timeout(this.#dialTimeout)]) }),
          ),
        );
        const failed = results.filter((r) => r.status === 'rejected');
        if (failed.length < results.length) {
          await this.#join(node, signal);
          this.#joined.resolve();
          return;
        }
        this.#log.warn(
          `bootstrap: no peer reachable (${(failed[0] as PromiseRejectedResult).reason}); retry in ${delay} ms`,
        );
        await sleep(delay, undefined, { signal });
        delay = Math.min(delay * 2, max);
      }
    };
    run()
      .catch((err) => {
        if (!signal.aborted) this.#log.error({ err }, `bootstrap failed: ${err?.message ?? err}`);
      })
      .finally(() => {
        this.#bootstrapping = false;
      });
  }

  /**
   * Kademlia join: look up our own ID through the peers we reached, which fills our routing table with (and
   * connects us to) the peers closest to us, and puts us in theirs. Without it a new node only knows its
   * bootstrap peers until the next periodic self-query (5 minutes by default).
   */
  async #join(node: Node, signal: AbortSignal): Promise<void> {
    const options = {
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.#init.dhtTimeout ?? DEFAULT_DHT_TIMEOUT)]),
    };
    // The dial resolves before identify tells the DHT the peer speaks our protocol; a lookup started earlier
    // has no peer to ask and ends at once. Wait for the routing table's first entry.
    while (this.routingTableSize === 0) {
      if (options.signal.aborted) throw options.signal.reason;
      await sleep(10, undefined, options);
    }
    for await (const _event of node.services.dht.getClosestPeers(this.peerId.toMultihash().bytes, options)) {
      // drain: the lookup runs as events are consumed
    }
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

  /**
   * Validates `value` with this node's own validator for the key's namespace (libp2p does not validate a local
   * put), stores it locally and on the closest peers. Returns how many remote peers accepted it.
   */
  async dhtPut(key: Uint8Array, value: Uint8Array, options: OpOptions = {}): Promise<number> {
    const ns = new TextDecoder().decode(key).split('/')[1];
    const validate = this.#validators[ns];
    if (validate == null) throw new TypeError(`dhtPut: no validator for DHT namespace "${ns}"`);
    const signal = this.#signal(options);
    await validate(key, value, { signal });
    let accepted = 0;
    for await (const event of this.libp2p.services.dht.put(key, value, { signal })) {
      if (isPutAccepted(event, value)) accepted++;
    }
    return accepted;
  }

  /** The best valid value for `key` in the DHT (own store included), or undefined when no peer has one. */
  async dhtGet(key: Uint8Array, options: OpOptions = {}): Promise<Uint8Array | undefined> {
    let value: Uint8Array | undefined;
    const heard: Uint8Array[] = [];
    try {
      for await (const event of this.libp2p.services.dht.get(key, { signal: this.#signal(options) })) {
        if (event.name === 'VALUE') value = event.value;
        if (event.name === 'PEER_RESPONSE' && event.record != null) heard.push(event.record.value);
      }
    } catch (err: any) {
      if (err?.name === 'NotFoundError') return value;
      // kad-dht ends a get whose answer it could not push back to a peer holding another value (a
      // "correction" that peer refused — say, the value expired meanwhile) with an error, dropping the answer.
      // The answer is still good: take the best of what the peers sent that this node's validator accepts.
      if (err?.name !== 'QueryError') throw err;
      const valid = await this.#validOnly(key, heard);
      if (valid.length === 0) throw err;
      return valid[recordSelector(key, valid)];
    }
    return value;
  }

  /** The values that verify as records of `key` (only `/xenos` keys: others have no verifier here). */
  async #validOnly(key: Uint8Array, values: Uint8Array[]): Promise<Uint8Array[]> {
    const text = new TextDecoder().decode(key);
    if (text.split('/')[1] !== RECORD_NAMESPACE) return [];
    const ok = await Promise.all(
      values.map((v) =>
        verifyRecord(text, v).then(
          () => true,
          () => false,
        ),
      ),
    );
    return values.filter((_, i) => ok[i]);
  }

  /** The record value this node itself stores for `key` (what it would answer a GET with), unvalidated. */
  async getLocalRecord(key: Uint8Array): Promise<Uint8Array | undefined> {
    const dsKey = recordDatastoreKey(key);
    if (!(await this.#datastore.has(dsKey))) return undefined;
    return DHTRecord.deserialize(await this.#datastore.get(dsKey)).value;
  }

  /** Announces this node as a provider of `cid` to the closest peers. */
  async provide(cid: CID, options: OpOptions = {}): Promise<void> {
    for await (const _event of this.libp2p.services.dht.provide(cid, { signal: this.#signal(options) })) {
      // drain: the query runs as the events are consumed
    }
  }

  /**
   * Providers of `cid` as they are found (deduplicated; this node included when it provides). `quorum`: stop the
   * query once that many peers (this node's own store counts as one) have answered with provider lists, instead of
   * asking every peer near the key; each of the k closest peers holds the whole list, so a few answers suffice.
   */
  async *findProviders(
    cid: CID,
    options: OpOptions & { quorum?: number } = {},
  ): AsyncGenerator<ProviderPeer> {
    const seen = new Set<string>();
    const done = new AbortController();
    const signal = AbortSignal.any([this.#signal(options), done.signal]);
    const quorum = options.quorum ?? Number.POSITIVE_INFINITY;
    let answers = 0;
    // Never leave a kad-dht query by `break`/`return`: its paths then end with an AbortError nobody awaits,
    // which surfaced as an uncaught exception. Abort it and drain it to its end instead (see finally).
    const events = this.libp2p.services.dht.findProviders(cid, { signal })[Symbol.asyncIterator]();
    let finished = false;
    try {
      while (true) {
        const next = await events.next();
        if (next.done === true) break;
        const event = next.value;
        if (event.name === 'PEER_RESPONSE' && event.providers.length > 0 && ++answers >= quorum) done.abort();
        if (event.name !== 'PROVIDER') continue;
        for (const p of event.providers) {
          const id = p.id.toString();
          if (seen.has(id)) continue;
          seen.add(id);
          yield { peerId: id, multiaddrs: p.multiaddrs.map((m) => m.toString()) };
        }
      }
      finished = true;
    } catch (err: any) {
      finished = true;
      if (err?.name !== 'NotFoundError' && !done.signal.aborted) throw err;
    } finally {
      if (!finished) {
        done.abort();
        try {
          while (!(await events.next()).done) {
            // discard: the query is stopping
          }
        } catch {
          // the AbortError that ends it
        }
      }
    }
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

/** A peer's answer to our PUT_VALUE that echoes the record back: it stored it (kad-dht's own success test). */
export function isPutAccepted(event: QueryEvent, value: Uint8Array): boolean {
  return (
    event.name === 'PEER_RESPONSE' &&
    event.messageName === 'PUT_VALUE' &&
    event.record != null &&
    Buffer.compare(event.record.value, value) === 0
  );
}

/** Where kad-dht keeps a record in the datastore (mirrors bufferToRecordKey in @libp2p/kad-dht utils.js). */
function recordDatastoreKey(key: Uint8Array): Key {
  return new Key(`${DHT_DATASTORE_PREFIX}/record/${uint8ArrayToString(key, 'base32')}`, false);
}
