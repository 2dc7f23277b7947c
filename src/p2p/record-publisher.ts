// Publishing this host's signed DHT records and fetching (verified) records of any host: the seq that grows
// across restarts (DATA_DIR/p2p.seq), one publish at a time, and the put/get through the node's DHT. The
// record format, validator and selector are records.ts's. It depends on a RecordStore (dht-client.ts), not
// on the node class.

import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import type { OpOptions, RecordStore } from './dht-client.ts';
import { RecordNotFoundError } from './errors.ts';
import {
  DEFAULT_RECORD_TTL_MS,
  encodeRecord,
  MAX_RECORD_LIFETIME_MS,
  type RecordBody,
  type RecordKind,
  SEQ_FILE,
  verifyRecord,
} from './records.ts';

export interface PublishOptions extends OpOptions {
  /** Lifetime in ms (at most MAX_RECORD_LIFETIME_MS; default DEFAULT_RECORD_TTL_MS); the record is
   *  rejected everywhere after it. */
  ttl?: number;
}

/** What the publisher uses of a node: its identity and the DHT. */
export type RecordNode = Pick<RecordStore, 'peerId' | 'dhtPut' | 'dhtGet'>;

export interface RecordPublisherComponents {
  node: RecordNode;
  privateKey: PrivateKey;
}

export interface RecordPublisherInit {
  /** DATA_DIR: the last seq is persisted in DATA_DIR/p2p.seq. */
  dataDir: string;
}

/** Publishes this host's signed records and fetches (verified) records of any host. */
export class RecordPublisher {
  readonly #node: RecordNode;
  readonly #privateKey: PrivateKey;
  readonly #seqFile: string;
  #lastSeq: number | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(components: RecordPublisherComponents, init: RecordPublisherInit) {
    this.#node = components.node;
    this.#privateKey = components.privateKey;
    this.#seqFile = join(init.dataDir, SEQ_FILE);
  }

  /** Next seq: max(now in ms, last + 1), written to disk before it is used, so it grows across restarts. */
  async #nextSeq(): Promise<number> {
    if (this.#lastSeq == null) {
      const text = await readFile(this.#seqFile, 'utf8').catch((err) => {
        if (err?.code === 'ENOENT') return '0';
        throw err;
      });
      this.#lastSeq = Number.parseInt(text, 10) || 0;
    }
    const seq = Math.max(Date.now(), this.#lastSeq + 1);
    await writeFile(`${this.#seqFile}.tmp`, `${seq}\n`);
    await rename(`${this.#seqFile}.tmp`, this.#seqFile);
    this.#lastSeq = seq;
    return seq;
  }

  /**
   * Signs and publishes `payload` under `key` (which must name this host). Returns the record body and how many
   * remote peers stored it (0 is possible in a one-host cluster: the record is still kept and served locally).
   */
  async publishRecord<P>(
    kind: RecordKind,
    key: string,
    payload: P,
    options: PublishOptions = {},
  ): Promise<{ record: RecordBody<P>; peers: number }> {
    const run = async () => {
      const issuedAt = Date.now();
      const ttl = options.ttl ?? DEFAULT_RECORD_TTL_MS;
      if (!(ttl > 0 && ttl <= MAX_RECORD_LIFETIME_MS))
        throw new RangeError(`record ttl ${ttl} ms: must be in (0, ${MAX_RECORD_LIFETIME_MS}] ms`);
      const body: RecordBody<P> = {
        v: 1,
        kind,
        key,
        seq: await this.#nextSeq(),
        issuedAt,
        expiresAt: issuedAt + ttl,
        payload,
        peerId: this.#node.peerId.toString(),
      };
      const bytes = await encodeRecord(body, this.#privateKey);
      const keyBytes = new TextEncoder().encode(key);
      const peers = await this.#node.dhtPut(keyBytes, bytes, options); // validates first
      return { record: body, peers };
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => {});
    return result;
  }

  /** The newest valid record under `key` from the DHT, verified. Throws RecordNotFoundError / InvalidRecordError. */
  async fetchRecord<P = unknown>(key: string, options: OpOptions = {}): Promise<RecordBody<P>> {
    const bytes = await this.#node.dhtGet(new TextEncoder().encode(key), options);
    if (bytes == null) throw new RecordNotFoundError(key, 'no peer returned a valid record');
    return (await verifyRecord(key, bytes)) as RecordBody<P>;
  }
}
