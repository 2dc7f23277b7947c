// What the parts above the libp2p node use of the DHT, as interfaces: RecordStore (put and get one record,
// what RecordPublisher needs) and DhtClient (that plus provider records, the routing table's view of who
// is near a key, and single direct requests to a peer, what Discovery needs). XenosNode implements both
// over kad-dht (kad-dht.ts); a part depends on the interface, so it knows nothing of the node class.

import type { PeerId } from '@libp2p/interface';
import type { CID } from 'multiformats/cid';
import type { ProtocolNode } from './protocol-node.ts';

export interface OpOptions {
  signal?: AbortSignal;
  /** ms; defaults to the node's dhtTimeout. */
  timeout?: number;
}

export interface ProviderPeer {
  peerId: string;
  multiaddrs: string[];
}

/** Signed-record storage in the DHT: what publishing and fetching one record needs. */
export interface RecordStore {
  readonly peerId: PeerId;
  /** Validates `value` with this node's validator, stores it locally and on the closest peers; returns
   *  how many remote peers accepted it. */
  dhtPut(key: Uint8Array, value: Uint8Array, options?: OpOptions): Promise<number>;
  /** The best valid value for `key` (own store included), or undefined when no peer has one. */
  dhtGet(key: Uint8Array, options?: OpOptions): Promise<Uint8Array | undefined>;
  /** The value this node itself stores for `key` (what it answers a GET with), unvalidated. */
  getLocalRecord(key: Uint8Array): Promise<Uint8Array | undefined>;
}

/** The DHT as discovery uses it, plus the stream protocols it serves and dials. */
export interface DhtClient extends RecordStore, ProtocolNode {
  /** Listen addresses with /p2p/<peerId>. */
  readonly multiaddrs: string[];
  /** Peers in the DHT routing table. */
  readonly routingTableSize: number;
  connectedPeers(): string[];
  /** Announces this node as a provider of `cid` to the closest peers (and keeps re-providing it). */
  provide(cid: CID, options?: OpOptions): Promise<void>;
  /** Stops re-providing `cid` (records already out expire on their own). */
  cancelProvide(cid: CID): Promise<void>;
  /** Providers of `cid` as found by a Kademlia query (deduplicated); `quorum` ends it after that many
   *  peers answered with provider lists. */
  findProviders(cid: CID, options?: OpOptions & { quorum?: number }): AsyncIterable<ProviderPeer>;
  /**
   * Up to `count` peers closest to `key` (in the DHT's keyspace) among the routing table and the
   * connected peers (only connected ones with `connected`), closest first. Empty when the DHT does not
   * expose what this needs.
   */
  nearestPeers(key: Uint8Array, options: { count: number; connected?: boolean }): Promise<PeerId[]>;
  /** One GET_PROVIDERS to `peer`, no query: the providers it lists (empty when none). */
  askProviders(peer: PeerId, key: Uint8Array, options: { signal: AbortSignal }): Promise<ProviderPeer[]>;
  /** One GET_VALUE to `peer`, no query: its copy of the record (undefined when it has none). */
  askValue(peer: PeerId, key: Uint8Array, options: { signal: AbortSignal }): Promise<Uint8Array | undefined>;
}
