// The one file that knows @libp2p/kad-dht's insides. It configures the DHT service (our protocol, the
// validators and selectors, the address mapper) and gives the node the DHT operations it wraps: put with
// the node's own validator first, get that survives a refused correction, provide, findProviders with a
// quorum, the record a node holds itself (kad-dht's datastore layout and record format), the routing
// table's size and nearest peers, and single GET_PROVIDERS / GET_VALUE requests to one peer (kad-dht's
// network.sendRequest, not in its public interface: checked at run time, and without it the nearest-peer
// asks report nothing so callers fall back to the plain query). test/p2p/kad-dht.test.ts holds it to
// this against real nodes, so an upgrade of kad-dht that moves these parts shows there first.

import type { PeerId, PeerInfo } from '@libp2p/interface';
import {
  Record as DHTRecord,
  type KadDHT,
  kadDHT,
  passthroughMapper,
  type QueryEvent,
  removePrivateAddressesMapper,
  removePublicAddressesMapper,
  type SelectFn,
  type ValidateFn,
} from '@libp2p/kad-dht';
import type { Datastore } from 'interface-datastore';
import { Key } from 'interface-datastore';
import type { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import { toString as uint8ArrayToString } from 'uint8arrays/to-string';
import type { DhtMetrics } from '../metrics/host-metrics.ts';
import type { ProviderPeer } from './dht-client.ts';
import { RECORD_NAMESPACE, recordSelector, verifyRecord } from './records.ts';

export const DHT_PROTOCOL = '/xenos/kad/1.0.0';
const DHT_DATASTORE_PREFIX = '/dht';

export type AddressMapper = 'passthrough' | 'private-only' | 'public-only' | ((peer: PeerInfo) => PeerInfo);

export interface KadServiceInit {
  /** Which addresses of other peers the DHT keeps. Default 'passthrough' (keeps loopback and private ones). */
  addressMapper?: AddressMapper;
  /** ms before the first DHT self-query. Default 0: ready for queries at once. */
  initialQuerySelfInterval?: number;
  validators: Record<string, ValidateFn>;
  selectors: Record<string, SelectFn>;
}

/** The kad-dht service for libp2p's `services.dht`: server mode, our protocol and datastore prefix. */
export function kadService(init: KadServiceInit): ReturnType<typeof kadDHT> {
  return kadDHT({
    protocol: DHT_PROTOCOL,
    clientMode: false,
    peerInfoMapper: mapperOf(init.addressMapper),
    datastorePrefix: DHT_DATASTORE_PREFIX,
    initialQuerySelfInterval: init.initialQuerySelfInterval ?? 0,
    allowQueryWithZeroPeers: true,
    validators: init.validators,
    selectors: init.selectors,
  });
}

function mapperOf(choice: AddressMapper | undefined): (peer: PeerInfo) => PeerInfo {
  if (typeof choice === 'function') return choice;
  if (choice === 'private-only') return removePublicAddressesMapper;
  if (choice === 'public-only') return removePrivateAddressesMapper;
  return passthroughMapper;
}

/**
 * The parts of kad-dht 16's implementation used beyond its public interface; each is checked at run time.
 */
interface KadInternals {
  routingTable?: {
    size?: number;
    closestPeers?: (kadId: Uint8Array, options?: { count?: number }) => PeerId[];
  };
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

export interface KadDhtComponents {
  /** The running DHT service (throws before the node has started). */
  dht: () => KadDHT;
  /** Currently connected peers. */
  connected: () => PeerId[];
  /** libp2p's datastore, where kad-dht keeps the records it holds. */
  datastore: Datastore;
  /** Each query's operation, result and latency (the host's /metrics). */
  metrics?: DhtMetrics;
}

/** DHT operations over a running kad-dht service; every call takes the signal that ends it. */
export class KadDht {
  readonly #c: KadDhtComponents;
  readonly #validators: Record<string, ValidateFn>;
  readonly #peerKadIds = new Map<string, Uint8Array>();

  constructor(components: KadDhtComponents, init: { validators: Record<string, ValidateFn> }) {
    this.#c = components;
    this.#validators = init.validators;
  }

  get #internals(): KadInternals {
    return this.#c.dht() as unknown as KadInternals;
  }

  get routingTableSize(): number {
    return this.#internals.routingTable?.size ?? 0;
  }

  /** Runs one query, reporting its result and latency as `op`. */
  async #timed<T>(op: string, query: () => Promise<T>): Promise<T> {
    const began = performance.now();
    let outcome: 'ok' | 'error' = 'error';
    try {
      const result = await query();
      outcome = 'ok';
      return result;
    } finally {
      this.#c.metrics?.query(op, outcome, (performance.now() - began) / 1000);
    }
  }

  /**
   * Validates `value` with our own validator for the key's namespace (libp2p does not validate a local put),
   * stores it locally and on the closest peers. Returns how many remote peers accepted it.
   */
  put(key: Uint8Array, value: Uint8Array, signal: AbortSignal): Promise<number> {
    return this.#timed('put', () => this.#put(key, value, signal));
  }

  async #put(key: Uint8Array, value: Uint8Array, signal: AbortSignal): Promise<number> {
    const ns = new TextDecoder().decode(key).split('/')[1];
    const validate = this.#validators[ns];
    if (validate == null) throw new TypeError(`dhtPut: no validator for DHT namespace "${ns}"`);
    await validate(key, value, { signal });
    let accepted = 0;
    for await (const event of this.#c.dht().put(key, value, { signal })) {
      if (isPutAccepted(event, value)) accepted++;
    }
    return accepted;
  }

  /** The best valid value for `key` in the DHT (own store included), or undefined when no peer has one. */
  get(key: Uint8Array, signal: AbortSignal): Promise<Uint8Array | undefined> {
    return this.#timed('get', () => this.#get(key, signal));
  }

  async #get(key: Uint8Array, signal: AbortSignal): Promise<Uint8Array | undefined> {
    let value: Uint8Array | undefined;
    const heard: Uint8Array[] = [];
    try {
      for await (const event of this.#c.dht().get(key, { signal })) {
        if (event.name === 'VALUE') value = event.value;
        if (event.name === 'PEER_RESPONSE' && event.record != null) heard.push(event.record.value);
      }
    } catch (err: any) {
      if (err?.name === 'NotFoundError') return value;
      // kad-dht ends a get whose answer it could not push back to a peer holding another value (a
      // "correction" that peer refused — say, the value expired meanwhile) with an error, dropping the answer.
      // The answer is still good: take the best of what the peers sent that our validator accepts.
      if (err?.name !== 'QueryError') throw err;
      const valid = await validOnly(key, heard);
      if (valid.length === 0) throw err;
      return valid[recordSelector(key, valid)];
    }
    return value;
  }

  /** The record value this node itself stores for `key` (what it would answer a GET with), unvalidated. */
  async localRecord(key: Uint8Array): Promise<Uint8Array | undefined> {
    const dsKey = recordDatastoreKey(key);
    if (!(await this.#c.datastore.has(dsKey))) return undefined;
    return DHTRecord.deserialize(await this.#c.datastore.get(dsKey)).value;
  }

  provide(cid: CID, signal: AbortSignal): Promise<void> {
    return this.#timed('provide', async () => {
      for await (const _event of this.#c.dht().provide(cid, { signal })) {
        // drain: the query runs as the events are consumed
      }
    });
  }

  async cancelProvide(cid: CID): Promise<void> {
    await this.#c.dht().cancelReprovide(cid);
  }

  /** Looks up our own ID (a Kademlia join): fills our routing table with the peers closest to us. */
  async lookupSelf(self: PeerId, signal: AbortSignal): Promise<void> {
    for await (const _event of this.#c.dht().getClosestPeers(self.toMultihash().bytes, { signal })) {
      // drain: the lookup runs as events are consumed
    }
  }

  /**
   * Providers of `cid` as they are found (deduplicated; this node included when it provides). `quorum`: stop
   * the query once that many peers (our own store counts as one) have answered with provider lists.
   */
  async *findProviders(cid: CID, signal: AbortSignal, quorum: number): AsyncGenerator<ProviderPeer> {
    const began = performance.now();
    let outcome: 'ok' | 'error' = 'ok'; // a caller that stops early ended a good query
    try {
      yield* this.#findProviders(cid, signal, quorum);
    } catch (err) {
      outcome = 'error';
      throw err;
    } finally {
      this.#c.metrics?.query('find_providers', outcome, (performance.now() - began) / 1000);
    }
  }

  async *#findProviders(cid: CID, signal: AbortSignal, quorum: number): AsyncGenerator<ProviderPeer> {
    const seen = new Set<string>();
    const done = new AbortController();
    const both = AbortSignal.any([signal, done.signal]);
    let answers = 0;
    // Never leave a kad-dht query by `break`/`return`: its paths then end with an AbortError nobody awaits,
    // which surfaced as an uncaught exception. Abort it and drain it to its end instead (see finally).
    const events = this.#c.dht().findProviders(cid, { signal: both })[Symbol.asyncIterator]();
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

  /** See DhtClient.nearestPeers. */
  async nearestPeers(key: Uint8Array, { count, connected = false }: { count: number; connected?: boolean }) {
    const closestPeers = this.#internals.routingTable?.closestPeers;
    if (closestPeers == null || this.#internals.network?.sendRequest == null) return [];
    const kadId = await kadIdOf(key);
    // The routing table learns a peer only after identify on its connection, so a host that has just started
    // may know none yet while it is connected to many: the connected peers are candidates too.
    const live = this.#c.connected();
    const open = new Set(live.map((p) => p.toString()));
    const candidates = new Map<string, PeerId>();
    const table = closestPeers.call(this.#internals.routingTable, kadId, { count: 20 });
    for (const p of [...table, ...live]) {
      if (!connected || open.has(p.toString())) candidates.set(p.toString(), p);
    }
    const distances = await Promise.all(
      [...candidates.values()].map(async (p) => ({ p, d: xor(kadId, await this.#kadIdOfPeer(p)) })),
    );
    return distances
      .sort((x, y) => Buffer.compare(x.d, y.d))
      .slice(0, count)
      .map(({ p }) => p);
  }

  /** One GET_PROVIDERS to `peer` (no query): the providers it lists. */
  async askProviders(peer: PeerId, key: Uint8Array, signal: AbortSignal): Promise<ProviderPeer[]> {
    for await (const event of this.#send(peer, { type: 'GET_PROVIDERS', key }, signal)) {
      if (event.name === 'PEER_RESPONSE') {
        return event.providers.map((p) => ({
          peerId: p.id.toString(),
          multiaddrs: p.multiaddrs.map((m) => m.toString()),
        }));
      }
    }
    return [];
  }

  /** One GET_VALUE to `peer` (no query): its copy of the record, unvalidated. */
  async askValue(peer: PeerId, key: Uint8Array, signal: AbortSignal): Promise<Uint8Array | undefined> {
    for await (const event of this.#send(peer, { type: 'GET_VALUE', key }, signal)) {
      if (event.name === 'PEER_RESPONSE' && event.record != null) return event.record.value;
    }
    return undefined;
  }

  #send(
    peer: PeerId,
    message: { type: 'GET_PROVIDERS' | 'GET_VALUE'; key: Uint8Array },
    signal: AbortSignal,
  ): AsyncIterable<QueryEvent> {
    const network = this.#internals.network;
    if (network?.sendRequest == null)
      throw new Error('this kad-dht has no direct requests (network.sendRequest)');
    return network.sendRequest.call(network, peer, message, {
      signal,
      path: { index: 0, queued: 0, running: 0, total: 1 },
    });
  }

  /** A peer's Kademlia ID (sha256 of its multihash), remembered. */
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

/** The values that verify as records of `key` (only `/xenos` keys: others have no verifier here). */
async function validOnly(key: Uint8Array, values: Uint8Array[]): Promise<Uint8Array[]> {
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

/** Where kad-dht keeps a record in the datastore (mirrors bufferToRecordKey in @libp2p/kad-dht utils.js). */
function recordDatastoreKey(key: Uint8Array): Key {
  return new Key(`${DHT_DATASTORE_PREFIX}/record/${uint8ArrayToString(key, 'base32')}`, false);
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
