// Instance logs between hosts: the /xenos/logs/1.0.0 libp2p stream protocol. The host that took an API
// request for the log of an instance running elsewhere opens a stream to the host that runs it; that
// host answers from its own driver. Connections are already authenticated and encrypted (cluster key,
// Noise), so the peer is a host of the cluster; what it sends is still size-checked and shape-checked.
//
// Wire format, every message length-prefixed (unsigned varint, as @libp2p/utils lpStream frames it):
//   requester → runner: one JSON request {namespace, name, follow, tail?}           (≤ 4 KiB)
//   runner → requester: one JSON header {ok: true} | {error: {code, reason, message}} (≤ 16 KiB)
//                       then data frames of 1..64 KiB, then one empty frame: the end.
// A stream reset (either side's abort) means "stop": the requester aborts when its client goes away,
// the runner when the domain is gone or it shuts down. A stream that ends without the empty frame was
// cut off, and is reported as such.

import type { Connection, Stream } from '@libp2p/interface';
import { type LengthPrefixedStream, lpStream } from '@libp2p/utils';
import { ApiError, errors } from '../api/status-errors.ts';
import type { Log } from '../log/logger.ts';
import type { ProtocolNode } from '../p2p/protocol-node.ts';
import { flow, waitForRoom } from '../p2p/stream-flow.ts';

export const LOGS_PROTOCOL = '/xenos/logs/1.0.0';

const MAX_REQUEST_BYTES = 4 * 1024;
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_FRAME_BYTES = 64 * 1024;
/** The runner stops queueing frames while this much waits to be sent. */
const MAX_QUEUED_BYTES = 1024 * 1024;
/** The requester pauses the stream while it holds a frame; what arrives meanwhile waits in the stream's
 *  buffer, which must outgrow a Yamux window (16 MiB) or a pause would reset the stream. */
const READ_BUFFER_BYTES = 32 * 1024 * 1024;
const DEFAULT_OPEN_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 5_000;
const NAME_MAX = 253;

/** What these functions use of a libp2p node; src/p2p's XenosNode has it. */
export type LogStreamNode = ProtocolNode;

export interface LogForwardRequest {
  namespace: string;
  name: string;
  follow: boolean;
  tail?: number;
}

interface ErrorHeader {
  error: { code: number; reason: string; message: string };
}

type Header = { ok: true } | ErrorHeader;

/** The request's shape, or a 400 naming what is wrong with it. */
export function parseForwardRequest(raw: unknown): LogForwardRequest {
  const r = raw as Partial<LogForwardRequest> | null;
  const bad = (what: string) => errors.badRequest(`log forward request: ${what}`);
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw bad('not a JSON object');
  for (const f of ['namespace', 'name'] as const) {
    const v = r[f];
    if (typeof v !== 'string' || v === '' || v.length > NAME_MAX)
      throw bad(`${f} must be a string of 1..${NAME_MAX} characters`);
  }
  if (typeof r.follow !== 'boolean') throw bad('follow must be true or false');
  if (r.tail !== undefined && (!Number.isInteger(r.tail) || r.tail < 0))
    throw bad('tail must be a non-negative integer');
  return {
    namespace: r.namespace!,
    name: r.name!,
    follow: r.follow,
    ...(r.tail !== undefined ? { tail: r.tail } : {}),
  };
}

function encodeJson(value: unknown, max: number, what: string): Uint8Array {
  const bytes = Buffer.from(JSON.stringify(value), 'utf8');
  if (bytes.byteLength > max) throw new Error(`${what} is ${bytes.byteLength} bytes, over the cap of ${max}`);
  return bytes;
}

function decodeJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new Error(`${what} is not JSON`);
  }
}

/**
 * Opens the log of an instance on `peer`: dials, sends the request and reads the header within
 * `timeoutMs`; resolves to the output, or rejects with the ApiError the runner answered (or a 503 when
 * it cannot be reached). The output ends with the runner's end frame; it stops (resetting the stream)
 * when `signal` aborts or the consumer stops iterating.
 */
export async function openForwardedLogs(
  node: LogStreamNode,
  peer: { peerId: string; host: string },
  request: LogForwardRequest,
  options: { signal: AbortSignal; timeoutMs?: number },
): Promise<AsyncIterable<Uint8Array>> {
  const { signal } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
  const opening = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
  const where = `host ${peer.host} (peer ${peer.peerId})`;
  let stream: Stream;
  try {
    stream = await node.dialProtocol(peer.peerId, LOGS_PROTOCOL, { signal: opening, timeout: timeoutMs });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw errors.serviceUnavailable(
      `cannot reach ${where}, which runs instance ${request.namespace}/${request.name}, to read its log: ${(err as Error).message}`,
    );
  }
  stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, READ_BUFFER_BYTES);
  const lp = lpStream(stream, {
    maxDataLength: MAX_FRAME_BYTES,
    maxBufferSize: READ_BUFFER_BYTES + MAX_FRAME_BYTES,
  });
  let header: Header;
  try {
    await lp.write(encodeJson(request, MAX_REQUEST_BYTES, 'the log request'), { signal: opening });
    const raw = await lp.read({ signal: opening });
    if (raw.byteLength > MAX_HEADER_BYTES) throw new Error(`its answer is over ${MAX_HEADER_BYTES} bytes`);
    header = decodeJson(raw.subarray(), `the answer of ${where}`) as Header;
  } catch (err) {
    stream.abort(err as Error);
    if (signal.aborted) throw signal.reason;
    const why = opening.aborted ? `no answer within ${timeoutMs} ms` : (err as Error).message;
    throw errors.serviceUnavailable(
      `${where} did not open the log of ${request.namespace}/${request.name}: ${why}`,
    );
  }
  if ('error' in header) {
    stream.abort(new Error('refused'));
    const e = header.error ?? {};
    const code = Number.isInteger(e.code) && e.code >= 400 && e.code <= 599 ? e.code : 502;
    throw new ApiError(code, String(e.reason ?? 'BadGateway'), String(e.message ?? `${where} refused`));
  }
  if (header.ok !== true) {
    stream.abort(new Error('malformed header'));
    throw errors.serviceUnavailable(`${where} answered the log request with something unexpected`);
  }
  return readFrames(stream, lp, signal, where);
}

async function* readFrames(
  stream: Stream,
  lp: LengthPrefixedStream<Stream>,
  signal: AbortSignal,
  where: string,
): AsyncGenerator<Uint8Array> {
  let ended = false;
  try {
    for (;;) {
      let frame: Uint8Array;
      try {
        frame = (await lp.read({ signal })).subarray();
      } catch (err) {
        if (signal.aborted) return;
        throw new Error(`the log stream from ${where} was cut off: ${(err as Error).message}`);
      }
      if (frame.byteLength === 0) {
        ended = true;
        return;
      }
      // Hold the sender back while the consumer (an HTTP client) takes this frame.
      flow(stream, 'pause');
      yield frame;
      flow(stream, 'resume');
    }
  } finally {
    if (ended) await stream.close().catch(() => stream.abort(new Error('close failed')));
    else stream.abort(new Error('the log reader stopped'));
  }
}

/**
 * Serves one inbound log stream: reads the request (within `timeoutMs`), asks `open` for the output
 * and sends it. `open` throws an ApiError for a request it cannot serve; it is sent back as the header.
 * Ends on the output's end, on the requester's reset, or when `signal` aborts (xenosd stopping).
 */
export async function serveForwardedLogs(
  stream: Stream,
  connection: Connection,
  open: (request: LogForwardRequest, signal: AbortSignal) => Promise<AsyncIterable<Uint8Array>>,
  options: { signal: AbortSignal; timeoutMs?: number; log: Log; hostName: string },
): Promise<void> {
  const from = connection.remotePeer.toString();
  const gone = new AbortController();
  const onClose = () => gone.abort(new Error(`peer ${from} closed the log stream`));
  stream.addEventListener('close', onClose);
  const signal = AbortSignal.any([gone.signal, options.signal]);
  const opening = AbortSignal.any([
    signal,
    AbortSignal.timeout(options.timeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS),
  ]);
  const lp = lpStream(stream, { maxDataLength: MAX_REQUEST_BYTES });
  try {
    // A request over the cap or cut short is no request: the stream is reset (and the reason logged).
    const raw = (await lp.read({ signal: opening })).subarray();
    let output: AsyncIterable<Uint8Array>;
    try {
      let json: unknown;
      try {
        json = decodeJson(raw, 'the request');
      } catch (err) {
        throw errors.badRequest(`log forward request: ${(err as Error).message}`);
      }
      output = await open(parseForwardRequest(json), signal);
    } catch (err) {
      if (opening.aborted) throw err;
      const api =
        err instanceof ApiError
          ? err
          : errors.internal(`host ${options.hostName} could not open the log: ${(err as Error).message}`);
      const header: ErrorHeader = { error: { code: api.code, reason: api.reason, message: api.message } };
      await lp.write(encodeJson(header, MAX_HEADER_BYTES, 'the error header'), { signal: opening });
      await stream.close({ signal: opening });
      return;
    }
    await lp.write(encodeJson({ ok: true }, MAX_HEADER_BYTES, 'the header'), { signal: opening });
    for await (const chunk of output) {
      for (let at = 0; at < chunk.byteLength; at += MAX_FRAME_BYTES) {
        await waitForRoom(stream, MAX_QUEUED_BYTES, signal);
        await lp.write(chunk.subarray(at, at + MAX_FRAME_BYTES), { signal });
      }
      if (signal.aborted) break;
    }
    if (gone.signal.aborted) {
      stream.abort(new Error('the requester left'));
      return;
    }
    // The output ended (or this host stops): a clean end, so the requester's client sees one too.
    const closing = AbortSignal.timeout(CLOSE_TIMEOUT_MS);
    await lp.write(new Uint8Array(0), { signal: closing });
    await stream.close({ signal: closing });
  } catch (err) {
    if (!gone.signal.aborted)
      options.log.warn({ err, peer: from }, `log stream for peer ${from} failed: ${(err as Error).message}`);
    stream.abort(err as Error);
  } finally {
    stream.removeEventListener('close', onClose);
  }
}
