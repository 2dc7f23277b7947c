// `/xenos/layer-copy/1.0.0`: how a host hands a copy of one of its instances' disk layer to the host that
// keeps it for failover. Over the cluster's connections only (cluster key, then Noise), like migrations:
//
//   sender → keeper: {"instance":{"namespace","name","uid"},"epoch":E,"takenAt":T,"driver":D}   (≤ 1 KiB)
//   keeper → sender: {"ok":true} | {"error":"..."}                                              (≤ 4 KiB)
//   sender → keeper: the driver's copy, raw, then half-close
//   keeper → sender: {"ok":true,"bytes":N} | {"error":"..."}, then close
//
// The keeper takes a copy only when its replicated store says the instance asks for copies, is bound to the
// host whose key dialled, and is at that epoch (`authorize`); a copy over its cap is cut off and dropped.

import type { Duplex, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Connection, Stream } from '@libp2p/interface';
import { type Log, silentLogger } from '../../log/logger.ts';
import { DNS1123_SUBDOMAIN } from '../../model/names.ts';
import { decodeJsonObject, encodeJsonFrame, lengthPrefixed, readFrame } from '../../p2p/json-frame.ts';
import { type ProtocolNode, type ServedProtocol, serveProtocol } from '../../p2p/protocol-node.ts';
import { streamDuplex } from '../../p2p/stream-duplex.ts';
import { type CopyMeta, type HeldCopy, type LayerCopyStore, UID_PATTERN } from './copy-store.ts';

export const LAYER_COPY_PROTOCOL = '/xenos/layer-copy/1.0.0';
const MAX_HEADER_BYTES = 1024;
const MAX_REPLY_BYTES = 4096;
const HEADER_TIMEOUT_MS = 10_000;
/** The most one instance's copy may weigh, unless the keeper is told otherwise. */
export const DEFAULT_MAX_COPY_BYTES = 4 * 1024 ** 3;

/** What the sender declares of its copy (the keeper adds the sending host from its own store). */
export type CopyHeader = Omit<CopyMeta, 'host'>;

/** A copy refused or cut short: what the other side said, or what broke. */
export class LayerCopyError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LayerCopyError';
  }
}

const protocolError = (message: string) => new LayerCopyError(message);
const frame = (value: unknown, max: number, what: string) =>
  lengthPrefixed(encodeJsonFrame(value, max, what, protocolError));

/** Sends a copy to `peer`: `write` writes the driver's copy to the stream it is given (and ends it). */
export async function sendLayerCopy(
  node: ProtocolNode,
  peer: string,
  header: CopyHeader,
  write: (out: Writable) => Promise<unknown>,
  signal: AbortSignal,
): Promise<number> {
  const stream = await node.dialProtocol(peer, LAYER_COPY_PROTOCOL, { signal });
  const duplex = streamDuplex(stream);
  duplex.on('error', () => {}); // every failure surfaces through the steps below
  const onAbort = () => duplex.destroy();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const { namespace, name, uid, ...rest } = header;
    duplex.write(frame({ instance: { namespace, name, uid }, ...rest }, MAX_HEADER_BYTES, 'the header'));
    const verdict = parseAnswer(
      await readFrame(duplex, MAX_REPLY_BYTES, 'the answer', signal, protocolError),
    );
    if ('error' in verdict) throw new LayerCopyError(`refused: ${verdict.error}`);
    await write(duplex);
    const done = parseAnswer(await readFrame(duplex, MAX_REPLY_BYTES, 'the receipt', signal, protocolError));
    if ('error' in done) throw new LayerCopyError(`not kept: ${done.error}`);
    return done.bytes ?? 0;
  } finally {
    signal.removeEventListener('abort', onAbort);
    duplex.destroy();
  }
}

function parseAnswer(bytes: Uint8Array): { ok: true; bytes?: number } | { error: string } {
  const r = decodeJsonObject(bytes, MAX_REPLY_BYTES, 'the answer', protocolError);
  if (r.ok === true) return { ok: true, ...(typeof r.bytes === 'number' ? { bytes: r.bytes } : {}) };
  if (typeof r.error === 'string') return { error: r.error.slice(0, 1024) };
  throw new LayerCopyError('the answer is neither {ok} nor {error}');
}

/** A header's shape, or LayerCopyError naming the field that is wrong. */
export function parseCopyHeader(bytes: Uint8Array): CopyHeader {
  const h = decodeJsonObject(bytes, MAX_HEADER_BYTES, 'the header', protocolError);
  const i = h.instance as Record<string, unknown> | undefined;
  const isName = (v: unknown): v is string =>
    typeof v === 'string' && v.length <= 253 && DNS1123_SUBDOMAIN.test(v);
  if (typeof i !== 'object' || i === null) throw protocolError('header: instance is missing');
  if (!isName(i.namespace) || !isName(i.name)) throw protocolError('header: instance has no valid name');
  if (typeof i.uid !== 'string' || !UID_PATTERN.test(i.uid)) throw protocolError('header: uid is not a uid');
  if (!Number.isSafeInteger(h.epoch) || (h.epoch as number) < 0)
    throw protocolError('header: epoch is not a count');
  if (typeof h.takenAt !== 'string' || Number.isNaN(Date.parse(h.takenAt)))
    throw protocolError('header: takenAt is not a time');
  if (typeof h.driver !== 'string' || !/^[a-z]{1,16}$/.test(h.driver))
    throw protocolError('header: driver is not a driver name');
  return {
    namespace: i.namespace,
    name: i.name,
    uid: i.uid,
    epoch: h.epoch as number,
    takenAt: new Date(h.takenAt).toISOString(),
    driver: h.driver,
  };
}

export interface LayerCopyReceiverComponents {
  node: ProtocolNode;
  copies: LayerCopyStore;
  /** The host that sends `header` from `peer` when it may (the instance's host), or a LayerCopyError. */
  authorize(header: CopyHeader, peer: string): string;
  /** A copy was kept. */
  kept?(copy: HeldCopy): void;
  log?: Log;
}

/** The keeper's side: checks each copy offered and keeps the ones it may. */
export class LayerCopyReceiver {
  readonly #c: LayerCopyReceiverComponents;
  readonly #maxBytes: number;
  readonly #log: Log;
  #served: ServedProtocol | undefined;

  constructor(components: LayerCopyReceiverComponents, init: { maxCopyBytes?: number } = {}) {
    this.#c = components;
    this.#maxBytes = init.maxCopyBytes ?? DEFAULT_MAX_COPY_BYTES;
    this.#log = components.log ?? silentLogger.root;
  }

  async start(): Promise<void> {
    if (this.#served) return;
    this.#served = await serveProtocol(
      this.#c.node,
      LAYER_COPY_PROTOCOL,
      (stream, conn, stopped) => this.#serve(stream, conn, stopped),
      { maxInboundStreams: 16, maxOutboundStreams: 16 },
    );
  }

  async stop(): Promise<void> {
    const served = this.#served;
    if (!served) return;
    this.#served = undefined;
    await served.stop(new Error('this host stopped keeping copies'));
  }

  async #serve(stream: Stream, connection: Connection, signal: AbortSignal): Promise<void> {
    const peer = connection.remotePeer.toString();
    const duplex = streamDuplex(stream);
    duplex.on('error', () => {});
    let header: CopyHeader | undefined;
    try {
      const deadline = AbortSignal.any([signal, AbortSignal.timeout(HEADER_TIMEOUT_MS)]);
      header = parseCopyHeader(
        await readFrame(duplex, MAX_HEADER_BYTES, 'the header', deadline, protocolError),
      );
      const host = this.#c.authorize(header, peer);
      duplex.write(frame({ ok: true }, MAX_REPLY_BYTES, 'the answer'));
      const copy = await this.#c.copies.receive({ ...header, host }, duplex, this.#maxBytes, signal);
      await answerThenEnd(duplex, { ok: true, bytes: copy.bytes });
      this.#c.kept?.(copy);
    } catch (err) {
      const what = header ? `a copy of ServiceInstance ${header.namespace}/${header.name}` : 'a copy';
      this.#log.warn({ peer, err }, `refused ${what} from peer ${peer}: ${(err as Error).message}`);
      await answerThenEnd(duplex, { error: (err as Error).message });
    }
  }
}

/** Sends the last frame and closes; a stream that will not take it within 5 s is reset. */
async function answerThenEnd(duplex: Duplex, reply: unknown): Promise<void> {
  if (duplex.destroyed) return;
  duplex.end(frame(reply, MAX_REPLY_BYTES, 'the receipt'));
  await finished(duplex, { readable: false, signal: AbortSignal.timeout(5_000) }).catch(() => {});
  duplex.destroy();
}
