// The puller's side of `/xenos/image/1.0.0` (protocol.ts): one request to one holder, one stream each.
// Every length is checked before a byte is read (a chunk must be exactly its manifest length, a bitmap
// exactly ceil(chunks/8) bytes); a stream that ends early is a truncated answer, one that stays silent for
// `idleTimeoutMs` is given up on. Bytes read count against the download cap (`--image-download-rate`):
// while the bucket is empty the stream is not read, so the holder is held back by flow control.

import type { Stream } from '@libp2p/interface';
import { type LengthPrefixedStream, lpStream } from '@libp2p/utils';
import { IdleTimeout } from '../../p2p/idle-timeout.ts';
import type { ProtocolNode } from '../../p2p/protocol-node.ts';
import { flow } from '../../p2p/stream-flow.ts';
import {
  HolderRefusedError,
  HolderUnreachableError,
  TruncatedAnswerError,
  WrongLengthError,
} from './errors.ts';
import {
  encodeFrame,
  IMAGE_PROTOCOL,
  type ImageRequest,
  MAX_FRAME_BYTES,
  MAX_HEADER_BYTES,
  MAX_REQUEST_BYTES,
  parseHeader,
} from './protocol.ts';
import { type TokenBucket, throttle } from './token-bucket.ts';

/** A stream's read buffer must hold a whole Yamux window (16 MiB) while the reader waits for the bucket. */
const READ_BUFFER_BYTES = 32 * 1024 * 1024;
const DEFAULT_OPEN_TIMEOUT_MS = 10_000;
const DEFAULT_ANSWER_TIMEOUT_MS = 30_000;
const DEFAULT_IDLE_TIMEOUT_MS = 20_000;
/** The largest manifest a puller reads (src/images' cap). */
export const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;

export interface ImageClientComponents {
  node: ProtocolNode;
  downloadBucket?: TokenBucket;
}

export interface ImageClientInit {
  /** Dial and send the request within this (ms). Default 10 s. */
  openTimeoutMs?: number;
  /** The answer's header within this (ms): a holder may queue a chunk request behind the chunks it is
   *  sending. Default 30 s. */
  answerTimeoutMs?: number;
  /** No bytes for this long (ms) ends a request. Default 20 s. */
  idleTimeoutMs?: number;
}

export interface Answer {
  /** The manifest digest the holder cuts the image by. */
  manifest: string;
  bytes: Buffer;
  /** A have answer's peer exchange: other peers that asked the holder for the image lately. */
  peers?: string[];
}

export class ImageClient {
  /** Chunk bytes received (checked or not), for the host's metrics. */
  bytesReceived = 0;
  readonly #node: ProtocolNode;
  readonly #bucket: TokenBucket | undefined;
  readonly #openTimeoutMs: number;
  readonly #answerTimeoutMs: number;
  readonly #idleTimeoutMs: number;

  constructor(components: ImageClientComponents, init: ImageClientInit = {}) {
    this.#node = components.node;
    this.#bucket = components.downloadBucket;
    this.#openTimeoutMs = init.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
    this.#answerTimeoutMs = init.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
    this.#idleTimeoutMs = init.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  }

  /** The holder's manifest bytes for `digest` (not yet checked against any digest: the caller does). */
  manifest(peer: string, digest: string, signal: AbortSignal): Promise<Answer> {
    return this.#request(peer, { op: 'manifest', digest }, { max: MAX_MANIFEST_BYTES }, signal);
  }

  /** The holder's have bitmap of an image of `chunks` chunks. */
  have(peer: string, digest: string, chunks: number, signal: AbortSignal): Promise<Answer> {
    return this.#request(peer, { op: 'have', digest }, { exact: Math.ceil(chunks / 8) }, signal);
  }

  /** Chunk `index` (exactly `length` bytes) of `digest` cut by `manifest`. Unverified: the store checks it.
   *  A seed may answer Declined with chunks to ask for instead (HolderRefusedError.offer). */
  async chunk(
    peer: string,
    request: { digest: string; manifest: string; index: number; length: number },
    signal: AbortSignal,
  ): Promise<Buffer> {
    const { digest, manifest, index, length } = request;
    const answer = await this.#request(
      peer,
      { op: 'chunk', digest, manifest, index, offers: true },
      { exact: length, chunk: true },
      signal,
    );
    this.bytesReceived += answer.bytes.byteLength;
    return answer.bytes;
  }

  async #request(
    peer: string,
    request: ImageRequest,
    expect: { max?: number; exact?: number; chunk?: boolean },
    signal: AbortSignal,
  ): Promise<Answer> {
    const what =
      request.op === 'chunk'
        ? `chunk ${request.index} of ${request.digest}`
        : `the ${request.op} of ${request.digest}`;
    const opening = AbortSignal.any([signal, AbortSignal.timeout(this.#openTimeoutMs)]);
    let stream: Stream;
    try {
      stream = await this.#node.dialProtocol(peer, IMAGE_PROTOCOL, {
        signal: opening,
        timeout: this.#openTimeoutMs,
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw new HolderUnreachableError(peer, (err as Error).message);
    }
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, READ_BUFFER_BYTES);
    const max = expect.exact ?? expect.max ?? 0;
    // The reader takes what arrives at once (lpStream buffers it), so the buffer needs room for the
    // whole answer and no more: one chunk is what a request asks for.
    const lp = lpStream(stream, {
      maxDataLength: Math.max(MAX_FRAME_BYTES, MAX_HEADER_BYTES),
      maxBufferSize: max + MAX_HEADER_BYTES + 2 * MAX_FRAME_BYTES,
    });
    let answering: AbortSignal | undefined;
    try {
      await lp.write(encodeFrame(request, MAX_REQUEST_BYTES, 'the request'), { signal: opening });
      answering = AbortSignal.any([signal, AbortSignal.timeout(this.#answerTimeoutMs)]);
      const header = parseHeader((await lp.read({ signal: answering })).subarray(), max, `peer ${peer}`);
      if ('error' in header)
        throw new HolderRefusedError(peer, header.error.code, header.error.message, header.error.offer);
      if (expect.exact !== undefined && header.length !== expect.exact)
        throw new WrongLengthError(peer, what, header.length, expect.exact);
      const bytes = await this.#body(stream, lp, header.length, expect.chunk === true, signal, peer, what);
      await stream
        .close({ signal: AbortSignal.any([signal, AbortSignal.timeout(this.#idleTimeoutMs)]) })
        .catch(() => {});
      return header.peers
        ? { manifest: header.manifest, bytes, peers: header.peers }
        : { manifest: header.manifest, bytes };
    } catch (err) {
      stream.abort(err as Error);
      if (signal.aborted) throw signal.reason;
      if (
        err instanceof HolderRefusedError ||
        err instanceof WrongLengthError ||
        err instanceof TruncatedAnswerError
      )
        throw err;
      if (answering?.aborted)
        throw new HolderUnreachableError(peer, `no answer to ${what} within ${this.#answerTimeoutMs} ms`);
      if (!answering && opening.aborted)
        throw new HolderUnreachableError(peer, `could not ask for ${what} within ${this.#openTimeoutMs} ms`);
      throw new HolderUnreachableError(peer, `${what}: ${(err as Error).message}`);
    }
  }

  async #body(
    stream: Stream,
    lp: LengthPrefixedStream<Stream>,
    length: number,
    counted: boolean,
    signal: AbortSignal,
    peer: string,
    what: string,
  ): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    let got = 0;
    const idle = new IdleTimeout(this.#idleTimeoutMs, signal);
    try {
      while (got < length) {
        let frame: Uint8Array;
        try {
          idle.arm();
          frame = (await lp.read({ signal: idle.signal })).subarray();
          idle.pause();
        } catch (err) {
          if (signal.aborted) throw signal.reason;
          // The holder closed its side before the bytes it announced: a truncated answer. A reset or a lost
          // connection is not the holder's fault (it may have died): the caller sees it as unreachable.
          if ((err as Error).name === 'UnexpectedEOFError')
            throw new TruncatedAnswerError(peer, what, got, length);
          const name = (err as Error).name;
          if (name === 'TimeoutError' || name === 'AbortError')
            throw new HolderUnreachableError(
              peer,
              `${what}: no bytes for ${this.#idleTimeoutMs} ms after ${got} of ${length}`,
            );
          throw err;
        }
        if (frame.byteLength === 0 || got + frame.byteLength > length)
          throw new WrongLengthError(peer, what, got + frame.byteLength, length);
        if (counted && this.#bucket) {
          // Not read while the bucket is empty: the holder is held back by the stream's flow control.
          flow(stream, 'pause');
          try {
            await throttle(this.#bucket, frame.byteLength, signal);
          } finally {
            flow(stream, 'resume');
          }
        }
        out.set(frame, got);
        got += frame.byteLength;
      }
    } finally {
      idle.pause();
    }
    return out;
  }
}
