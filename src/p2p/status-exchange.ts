// Host status records between hosts: this host serves its own signed record on `/xenos/status/1.0.0`
// (one length-prefixed message, then close), and reads a provider's — from memory when it is ours, straight
// from the provider on an open connection, or, with no connection to it yet, raced against the connected
// peers nearest the record's key (one GET_VALUE each: cheaper than a new connection's handshakes), else
// from the DHT. Every record read is verified (signature, key, expiry) before it is returned.

import type { Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import type { Log } from '../log/logger.ts';
import type { DhtClient, OpOptions, ProviderPeer } from './dht-client.ts';
import type { RecordPublisher } from './record-publisher.ts';
import { hostRecordKey, MAX_RECORD_BYTES, type RecordBody, verifyRecord } from './records.ts';

export const STATUS_PROTOCOL = '/xenos/status/1.0.0';
/** How many connected peers near a record's key are asked for their copy. */
const NEAREST_ASKED = 3;

export interface StatusExchangeComponents {
  node: DhtClient;
  records: Pick<RecordPublisher, 'fetchRecord'>;
  log: Log;
}

export class StatusExchange {
  readonly #node: DhtClient;
  readonly #records: Pick<RecordPublisher, 'fetchRecord'>;
  readonly #log: Log;
  /** Our own record's bytes, as served (undefined until published). */
  own: Uint8Array | undefined;

  constructor(components: StatusExchangeComponents) {
    this.#node = components.node;
    this.#records = components.records;
    this.#log = components.log;
  }

  async start(): Promise<void> {
    await this.#node.handle(STATUS_PROTOCOL, (stream) => this.#serve(stream));
  }

  async stop(): Promise<void> {
    await this.#node.unhandle(STATUS_PROTOCOL);
  }

  /**
   * The provider's verified status record: ours from memory, others' straight from them (or, while we have no
   * connection to them, from the connected peers near its key, whichever comes first), else from the DHT.
   */
  async statusOf(provider: ProviderPeer, options: OpOptions): Promise<RecordBody<unknown>> {
    const key = hostRecordKey(provider.peerId);
    if (provider.peerId === this.#node.peerId.toString() && this.own != null) {
      return verifyRecord(key, this.own);
    }
    const connected = this.#node.connectedPeers().includes(provider.peerId);
    const direct = this.#request(provider, options).then((bytes) => verifyRecord(key, bytes));
    try {
      if (connected) return await direct;
      // Not connected yet: a new connection's handshakes cost more than a round trip to the peers near the
      // record's key, which we are connected to. Race both; the loser's work is dropped (the dial stays up).
      const local = new AbortController();
      const copy = this.#fromNearest(key, {
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

  /**
   * A provider's host record from the connected peers nearest its key (GET_VALUE, one round trip on an open
   * connection): the first copy that verifies. The provider puts each new record to those peers before it
   * serves it, so this is as fresh as asking it, without a new connection's handshakes.
   */
  async #fromNearest(key: string, options: OpOptions): Promise<RecordBody<unknown>> {
    const keyBytes = new TextEncoder().encode(key);
    const peers = await this.#node.nearestPeers(keyBytes, { count: NEAREST_ASKED, connected: true });
    if (peers.length === 0) throw new Error('no connected peer near the key');
    const done = new AbortController();
    const signal = AbortSignal.any([
      done.signal,
      AbortSignal.timeout(options.timeout ?? 5000),
      ...(options.signal ? [options.signal] : []),
    ]);
    try {
      return await Promise.any(
        peers.map(async (peer) => {
          const value = await this.#node.askValue(peer, keyBytes, { signal });
          if (value == null) throw new Error(`${peer} has no copy of ${key}`);
          return verifyRecord(key, value);
        }),
      );
    } finally {
      done.abort();
    }
  }

  async #request(provider: ProviderPeer, options: OpOptions): Promise<Uint8Array> {
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
  #serve(stream: Stream): void {
    lpStream(stream)
      .write(this.own ?? new Uint8Array(0), { signal: AbortSignal.timeout(5000) })
      .then(() => stream.close({ signal: AbortSignal.timeout(5000) }))
      .catch((err) => {
        stream.abort(err);
        this.#log.warn(`serving status: ${err?.message ?? err}`);
      });
  }
}

function withPeerId(addr: string, peerId: string): string {
  return addr.includes('/p2p/') ? addr : `${addr}/p2p/${peerId}`;
}
