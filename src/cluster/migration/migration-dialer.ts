// The source's side of `/xenos/migrate/1.0.0` (protocol.ts): the MigrationTransport of one migration.
// Each `open(label)` dials a new stream to the target over the cluster's connection, sends the header
// and waits for the target's verdict (it may wait for its store to receive the ServiceMigration), then
// hands the stream over as a Duplex with flow control both ways (src/p2p/stream-duplex.ts; the frames
// are read on that Duplex, src/p2p/json-frame.ts).

import type { Duplex } from 'node:stream';
import type { Stream } from '@libp2p/interface';
import type { MigrationTransport } from '../../drivers/driver.ts';
import { lengthPrefixed, readFrame } from '../../p2p/json-frame.ts';
import type { ProtocolNode } from '../../p2p/protocol-node.ts';
import { type StreamDuplexInit, streamDuplex } from '../../p2p/stream-duplex.ts';
import { MigrationRefusedError, TargetUnreachableError } from './errors.ts';
import {
  encodeFrame,
  MAX_HEADER_BYTES,
  MAX_REPLY_BYTES,
  MAX_STREAMS,
  MIGRATE_PROTOCOL,
  type MigrationRef,
  parseReply,
  protocolError,
} from './protocol.ts';

/** The target waits up to its acceptance bound for replication; this is a little longer. */
const DEFAULT_OPEN_TIMEOUT_MS = 20_000;

export interface MigrationDialerInit extends StreamDuplexInit {
  /** The target's peer id and, for messages, its host name. */
  peer: string;
  target: string;
  migration: MigrationRef;
  /** Dial, send the header and get the verdict within this (ms). Default 20 s. */
  openTimeoutMs?: number;
}

export class MigrationDialer implements MigrationTransport {
  readonly #node: ProtocolNode;
  readonly #init: MigrationDialerInit;
  #seq = 0;

  constructor(components: { node: ProtocolNode }, init: MigrationDialerInit) {
    this.#node = components.node;
    this.#init = init;
  }

  async open(label: string, options: { signal?: AbortSignal } = {}): Promise<Duplex> {
    const { peer, target, migration } = this.#init;
    if (this.#seq >= MAX_STREAMS)
      throw new MigrationRefusedError('Finished', `a migration opens at most ${MAX_STREAMS} streams`);
    const seq = this.#seq++;
    const timeoutMs = this.#init.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
    const signal = options.signal ?? new AbortController().signal;
    const opening = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    let stream: Stream;
    try {
      stream = await this.#node.dialProtocol(peer, MIGRATE_PROTOCOL, { signal: opening, timeout: timeoutMs });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw new TargetUnreachableError(`host ${target} (peer ${peer})`, (err as Error).message);
    }
    const duplex = streamDuplex(stream, this.#init);
    duplex.on('error', () => {}); // until the caller has it: every failure below is thrown
    try {
      duplex.write(lengthPrefixed(encodeFrame({ migration, label, seq }, MAX_HEADER_BYTES, 'the header')));
      const answer = await readFrame(
        duplex,
        MAX_REPLY_BYTES,
        `the answer of host ${target}`,
        opening,
        protocolError,
      );
      const reply = parseReply(answer, `host ${target}`);
      if ('error' in reply)
        throw new MigrationRefusedError(
          reply.error.code,
          `host ${target} refused stream "${label}": ${reply.error.message}`,
        );
    } catch (err) {
      duplex.destroy();
      if (signal.aborted) throw signal.reason;
      if (err instanceof MigrationRefusedError) throw err;
      const why = opening.aborted ? `no answer within ${timeoutMs} ms` : (err as Error).message;
      throw new TargetUnreachableError(`host ${target} (peer ${peer})`, `stream "${label}": ${why}`);
    }
    // An abort of the caller's signal resets the stream: the target sees it at once. The caller knows
    // why; its reads and writes end as a premature close (no 'error' event nobody may be listening for).
    const onAbort = () => duplex.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    duplex.once('close', () => signal.removeEventListener('abort', onAbort));
    return duplex;
  }
}
