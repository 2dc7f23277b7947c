// The target's side of `/xenos/migrate/1.0.0` (protocol.ts): reads each stream's header (size-capped,
// within a deadline), asks `authorize` whether this peer may send this migration here (the controller
// checks its replicated store, waiting a bounded time for the ServiceMigration to arrive), and groups
// the streams of one migration into one IncomingMigration, handed to `accept` when its first stream
// comes. A lost connection to the source fails the group and aborts its signal; once `accept` settles
// the group is over and later streams are refused. Every refusal is answered with a code and a reason
// and logged.

import type { Duplex } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Connection, Stream } from '@libp2p/interface';
import type { IncomingMigration } from '../../drivers/driver.ts';
import { type Log, silentLogger } from '../../log/logger.ts';
import { lengthPrefixed, readFrame } from '../../p2p/json-frame.ts';
import { type ProtocolNode, type ServedProtocol, serveProtocol } from '../../p2p/protocol-node.ts';
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
  protocolError,
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
  #served: ServedProtocol | undefined;

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
    if (this.#served) return;
    this.#served = await serveProtocol(
      this.#c.node,
      MIGRATE_PROTOCOL,
      (stream, connection, stopped) => this.#serve(stream, connection, stopped),
      { maxInboundStreams: 32, maxOutboundStreams: 32 },
    );
  }

  async stop(): Promise<void> {
    const served = this.#served;
    if (!served) return;
    this.#served = undefined;
    const err = new Error('this host stopped receiving migrations');
    const stopping = served.stop(err); // the streams' signal aborts now, before the groups fail
    for (const g of this.#groups.values()) {
      g.queue.fail(err);
      g.abort.abort(err);
    }
    await stopping;
  }

  async #serve(stream: Stream, connection: Connection, stopped: AbortSignal): Promise<void> {
    const peer = connection.remotePeer.toString();
    const duplex = streamDuplex(stream, this.#init);
    duplex.on('error', () => {}); // every failure below is handled; the driver's reads and writes see the rest
    const deadline = AbortSignal.any([
      stopped,
      AbortSignal.timeout(this.#init.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS),
    ]);
    let header: StreamHeader;
    try {
      header = parseHeader(await readFrame(duplex, MAX_HEADER_BYTES, 'the header', deadline, protocolError));
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
      if (code) await answerThenEnd(duplex, { error: { code, message: (err as Error).message } });
      else duplex.destroy();
      return;
    }
    duplex.write(lengthPrefixed(encodeFrame({ ok: true }, MAX_REPLY_BYTES, 'the answer')));
    if (duplex.destroyed) return;
    const group =
      this.#groups.get(header.migration.uid) ?? this.#begin(header.migration, peer, connection, stopped);
    if (!group.queue.put(header.seq, { label: header.label, stream: duplex }))
      duplex.destroy(
        new Error(`stream ${header.seq} of ${refString(header.migration)} came twice or too late`),
      );
  }

  /** The first stream of a migration: make its group and hand it to `accept`. */
  #begin(migration: MigrationRef, peer: string, connection: Connection, stopped: AbortSignal): Group {
    const group: Group = { peer, queue: new StreamQueue(), abort: new AbortController() };
    this.#groups.set(migration.uid, group);
    const lost = () => {
      const err = new Error(`the connection to the source (peer ${peer}) closed`);
      group.queue.fail(err);
      group.abort.abort(err);
    };
    connection.addEventListener('close', lost, { once: true });
    const signal = AbortSignal.any([group.abort.signal, stopped]);
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
}

/** Sends a refusal and half-closes; a stream that will not take it within 5 s is reset. */
async function answerThenEnd(
  duplex: Duplex,
  reply: { error: { code: RefusalCode; message: string } },
): Promise<void> {
  duplex.end(lengthPrefixed(encodeFrame(reply, MAX_REPLY_BYTES, 'the refusal')));
  await finished(duplex, { readable: false, signal: AbortSignal.timeout(5_000) }).catch(() =>
    duplex.destroy(),
  );
}
