// The target's side of `/xenos/migrate/1.0.0` (protocol.ts): reads each stream's header (size-capped,
// within a deadline), asks `authorize` whether this peer may send this migration here (the controller
// checks its replicated store, waiting a bounded time for the ServiceMigration to arrive), and groups
// the streams of one migration into one IncomingMigration, handed to `accept` when its first stream
// comes. A lost connection to the source fails the group and aborts its signal; once `accept` settles
// the group is over and later streams are refused. Every refusal is answered with a code and a reason
// and logged.

import type { Connection, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import type { IncomingMigration } from '../../drivers/driver.ts';
import { type Log, silentLogger } from '../../log/logger.ts';
import type { ProtocolNode } from '../../p2p/protocol-node.ts';
import { type StreamDuplexInit, streamDuplex } from '../../p2p/stream-duplex.ts';
import { MigrationRefusedError } from './errors.ts';
import {
  encodeFrame,
  MAX_HEADER_BYTES,
  MAX_REPLY_BYTES,
  MIGRATE_PROTOCOL,
  MigrationProtocolError,
  type MigrationRef,
  parseHeader,
  type RefusalCode,
  refString,
  type StreamHeader,
} from './protocol.ts';
import { StreamQueue } from './stream-queue.ts';

const DEFAULT_HEADER_TIMEOUT_MS = 10_000;
/** Finished migrations remembered, so a late stream of one is refused rather than starting it again. */
const FINISHED_KEPT = 256;

export interface IncomingMigrationRequest {
  migration: MigrationRef;
  /** The source's peer id. */
  peer: string;
  incoming: IncomingMigration;
  /** Aborts when the source's connection closes or this host stops receiving. */
  signal: AbortSignal;
}

export interface MigrationReceiverComponents {
  node: ProtocolNode;
  /** Resolves when `peer` may send `migration` here; throws a MigrationRefusedError (its code and
   *  message go back to the source) otherwise. May wait, bounded, for replication. */
  authorize(migration: MigrationRef, peer: string, signal: AbortSignal): Promise<void>;
  /** The first stream of a migration arrived: receive it (the driver's migrateIn). The group ends when
   *  this settles. */
  accept(request: IncomingMigrationRequest): Promise<void>;
  log?: Log;
}

export interface MigrationReceiverInit extends StreamDuplexInit {
  /** A header must arrive within this (ms). Default 10 s. */
  headerTimeoutMs?: number;
}

interface Group {
  peer: string;
  queue: StreamQueue;
  abort: AbortController;
}

export class MigrationReceiver {
  readonly #c: MigrationReceiverComponents;
  readonly #init: MigrationReceiverInit;
  readonly #log: Log;
  readonly #groups = new Map<string, Group>();
  readonly #finished = new Set<string>();
  #stop = new AbortController();
  #running = false;

  constructor(components: MigrationReceiverComponents, init: MigrationReceiverInit = {}) {
    this.#c = components;
    this.#init = init;
    this.#log = components.log ?? silentLogger.root;
  }

  /** Migrations being received now (by ServiceMigration uid). */
  get active(): number {
    return this.#groups.size;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#stop = new AbortController();
    await this.#c.node.handle(
      MIGRATE_PROTOCOL,
      (stream, connection) => void this.#serve(stream, connection),
      {
        maxInboundStreams: 32,
        maxOutboundStreams: 32,
      },
    );
    this.#running = true;
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    const err = new Error('this host stopped receiving migrations');
    this.#stop.abort(err);
    for (const g of this.#groups.values()) {
      g.queue.fail(err);
      g.abort.abort(err);
    }
    await this.#c.node.unhandle(MIGRATE_PROTOCOL);
  }

  async #serve(stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString();
    const lp = lpStream(stream, { maxDataLength: MAX_HEADER_BYTES });
    const deadline = AbortSignal.any([
      this.#stop.signal,
      AbortSignal.timeout(this.#init.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS),
    ]);
    let header: StreamHeader;
    try {
      header = parseHeader((await lp.read({ signal: deadline })).subarray());
      const key = header.migration.uid;
      if (this.#finished.has(key))
        throw new MigrationRefusedError('Finished', `${refString(header.migration)} is over on this host`);
      const group = this.#groups.get(key);
      if (group && group.peer !== peer)
        throw new MigrationRefusedError(
          'WrongSource',
          `${refString(header.migration)} comes from another peer`,
        );
      await this.#c.authorize(header.migration, peer, deadline);
    } catch (err) {
      const code: RefusalCode | undefined =
        err instanceof MigrationRefusedError
          ? err.code
          : err instanceof MigrationProtocolError
            ? 'BadRequest'
            : undefined;
      this.#log.warn({ peer }, `refused a migration stream from peer ${peer}: ${(err as Error).message}`);
      if (code) await this.#answer(lp, stream, { error: { code, message: (err as Error).message } });
      else stream.abort(err as Error);
      return;
    }
    await lp
      .write(encodeFrame({ ok: true }, MAX_REPLY_BYTES, 'the answer'), { signal: deadline })
      .catch((err: Error) => stream.abort(err));
    if (stream.status !== 'open') return;
    const duplex = streamDuplex(lp.unwrap(), this.#init);
    const group = this.#groups.get(header.migration.uid) ?? this.#begin(header.migration, peer, connection);
    if (!group.queue.put(header.seq, { label: header.label, stream: duplex }))
      duplex.destroy(
        new Error(`stream ${header.seq} of ${refString(header.migration)} came twice or too late`),
      );
  }

  /** The first stream of a migration: make its group and hand it to `accept`. */
  #begin(migration: MigrationRef, peer: string, connection: Connection): Group {
    const group: Group = { peer, queue: new StreamQueue(), abort: new AbortController() };
    this.#groups.set(migration.uid, group);
    const lost = () => {
      const err = new Error(`the connection to the source (peer ${peer}) closed`);
      group.queue.fail(err);
      group.abort.abort(err);
    };
    connection.addEventListener('close', lost, { once: true });
    const signal = AbortSignal.any([group.abort.signal, this.#stop.signal]);
    this.#log.info({ peer }, `receiving ${refString(migration)} from peer ${peer}`);
    this.#c
      .accept({ migration, peer, incoming: group.queue, signal })
      .catch((err: Error) => {
        this.#log.warn({ err, peer }, `receiving ${refString(migration)} failed: ${err.message}`);
        group.queue.fail(err);
      })
      .finally(() => {
        connection.removeEventListener('close', lost);
        group.queue.close();
        this.#groups.delete(migration.uid);
        this.#finished.add(migration.uid);
        if (this.#finished.size > FINISHED_KEPT) this.#finished.delete(this.#finished.values().next().value!);
      });
    return group;
  }

  async #answer(
    lp: { write(b: Uint8Array, o: { signal: AbortSignal }): Promise<void> },
    stream: Stream,
    reply: { error: { code: RefusalCode; message: string } },
  ): Promise<void> {
    const signal = AbortSignal.timeout(5_000);
    try {
      await lp.write(encodeFrame(reply, MAX_REPLY_BYTES, 'the refusal'), { signal });
      await stream.close({ signal });
    } catch (err) {
      stream.abort(err as Error);
    }
  }
}
