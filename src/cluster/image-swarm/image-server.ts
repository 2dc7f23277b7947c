// The holder's side of `/xenos/image/1.0.0` (protocol.ts): answers manifest, have and chunk requests from
// this host's image store, complete images and partial ones alike (a host serves the chunks it has while
// it still pulls the rest). Chunks are read verified from the store and sent in frames under the upload
// cap (`--image-upload-rate`), never queueing more than MAX_QUEUED_BYTES in the stream; a few chunks go at
// once, at most two to one peer (send-slots.ts), the next requests wait their turn, and beyond `maxServing`
// taken a puller is told Busy and asks another holder. A host where an image's swarm starts (it was
// uploaded, imported or downloaded here) seeds it (first-pass.ts): until every chunk has left it once, it
// declines a chunk it has just sent to another peer and offers unsent ones. It tells each puller that reads
// its bitmap which other peers asked for the image lately (peer-exchange.ts), and says whom it saw asking
// (`onInterest`), so that pullers of one image trade with each other from their first chunks on. Requests
// that do not parse, are too large or too slow are refused and counted by reason.

import type { Connection, Stream } from '@libp2p/interface';
import { type LengthPrefixedStream, lpStream } from '@libp2p/utils';
import type { ImageStore } from '../../images/image-store.ts';
import { manifestDigest, parseManifest } from '../../images/manifest.ts';
import { type Log, silentLogger } from '../../log/logger.ts';
import { RefusalCounter } from '../../metrics/refusals.ts';
import { IdleTimeout } from '../../p2p/idle-timeout.ts';
import { type ProtocolNode, type ServedProtocol, serveProtocol } from '../../p2p/protocol-node.ts';
import { waitForRoom } from '../../p2p/stream-flow.ts';
import { FirstPass, type FirstPassInit } from './first-pass.ts';
import { PeerExchange } from './peer-exchange.ts';
import {
  type ErrorCode,
  encodeFrame,
  IMAGE_PROTOCOL,
  ImageProtocolError,
  type ImageRequest,
  MAX_FRAME_BYTES,
  MAX_HEADER_BYTES,
  MAX_REQUEST_BYTES,
  parseRequest,
} from './protocol.ts';
import { SendSlots } from './send-slots.ts';
import { type TokenBucket, throttle } from './token-bucket.ts';

/** What may wait in a stream's send queue before the server waits (see stream-flow.ts). */
const MAX_QUEUED_BYTES = 1024 * 1024;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/** Images whose first pass a server keeps track of (the oldest forgotten beyond). */
const MAX_FIRST_PASSES = 64;

export const SERVE_REFUSAL_REASONS = ['malformed', 'too_large', 'timeout'] as const;
export type ServeRefusalReason = (typeof SERVE_REFUSAL_REASONS)[number];

export interface ImageServerComponents {
  node: ProtocolNode;
  store: Pick<ImageStore, 'manifest' | 'haveBitmap' | 'readChunk' | 'seeds'>;
  /** The upload cap; none: as fast as the link goes. */
  uploadBucket?: TokenBucket;
  log?: Log;
  /** Called with each request that parses: `peer` (the connection's own, authenticated) asked for
   *  `digest`. The swarm tells its pull of that image, which may take chunks from it. */
  onInterest?: (digest: string, peer: string) => void;
}

export interface ImageServerInit {
  /** Chunk requests taken at once, sending or waiting for a send slot; beyond, pullers are told Busy and
   *  ask other holders. Default 32 (a puller asks a holder for 4 at most). */
  maxServing?: number;
  /** Chunks sent at once (each is held in memory while it goes); the others wait their turn. Default 12. */
  maxSending?: number;
  /** Chunks sent at once to one peer (send-slots.ts says why). Default 2. */
  maxSendingPerPeer?: number;
  /** A request must arrive within this (ms). Default 10 s. */
  requestTimeoutMs?: number;
  /** A puller that takes no bytes for this long (ms) is given up on. Default 30 s. */
  idleTimeoutMs?: number;
  /** Hash every chunk again as it is read from disk, so a blob damaged here is never sent (the chunk is
   *  answered ChunkNotHeld). Default true; pullers check every chunk anyway. */
  verifyChunks?: boolean;
  /** Super-seeding of images held whole (first-pass.ts); `false` turns it off. Default on. */
  firstPass?: FirstPassInit | false;
}

export class ImageServer {
  readonly refusals: RefusalCounter<ServeRefusalReason>;
  readonly #node: ProtocolNode;
  readonly #store: Pick<ImageStore, 'manifest' | 'haveBitmap' | 'readChunk' | 'seeds'>;
  readonly #bucket: TokenBucket | undefined;
  readonly #log: Log;
  readonly #maxServing: number;
  readonly #requestTimeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #verify: boolean;
  #serving = 0;
  readonly #slots: SendSlots;
  /** Chunk bytes sent, for the metrics and the tests. */
  bytesSent = 0;
  /** Chunks found damaged on this host's disk when asked for (not sent). */
  damagedChunks = 0;
  readonly #damagedSeen = new Set<string>();
  /** Chunk requests declined by a seed's first pass (the puller asked for an offered chunk instead). */
  declined = 0;
  readonly #firstPassInit: FirstPassInit | false;
  readonly #firstPasses = new Map<string, FirstPass>();
  readonly #pex = new PeerExchange();
  readonly #onInterest: ((digest: string, peer: string) => void) | undefined;
  #served: ServedProtocol | undefined;

  constructor(components: ImageServerComponents, init: ImageServerInit = {}) {
    this.#node = components.node;
    this.#store = components.store;
    this.#bucket = components.uploadBucket;
    this.#log = components.log ?? silentLogger.root;
    this.#onInterest = components.onInterest;
    this.#maxServing = init.maxServing ?? 32;
    this.#slots = new SendSlots({ max: init.maxSending, perPeer: init.maxSendingPerPeer });
    this.#requestTimeoutMs = init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#idleTimeoutMs = init.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.#verify = init.verifyChunks ?? true;
    this.#firstPassInit = init.firstPass ?? {};
    this.refusals = new RefusalCounter({
      name: 'xenos_image_requests_refused_total',
      help: 'Image-protocol requests from peers refused before they were served, by reason.',
      reasons: SERVE_REFUSAL_REASONS,
      log: this.#log,
    });
  }

  /** Chunks being sent now. */
  get serving(): number {
    return this.#serving;
  }

  async start(): Promise<void> {
    if (this.#served) return;
    this.#served = await serveProtocol(
      this.#node,
      IMAGE_PROTOCOL,
      (stream, connection, stopped) => this.#serve(stream, connection, stopped),
      { maxInboundStreams: 64, maxOutboundStreams: 64 },
    );
  }

  async stop(): Promise<void> {
    const served = this.#served;
    if (!served) return;
    this.#served = undefined;
    await served.stop(new Error('image server stopping'));
  }

  async #serve(stream: Stream, connection: Connection, stopped: AbortSignal): Promise<void> {
    const from = connection.remotePeer.toString();
    const gone = new AbortController();
    const onClose = () => gone.abort(new Error(`peer ${from} closed the image stream`));
    stream.addEventListener('close', onClose);
    const signal = AbortSignal.any([gone.signal, stopped]);
    const lp = lpStream(stream, { maxDataLength: MAX_REQUEST_BYTES });
    let request: ImageRequest;
    try {
      const raw = await lp.read({
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.#requestTimeoutMs)]),
      });
      request = parseRequest(raw.subarray());
    } catch (err) {
      stream.removeEventListener('close', onClose);
      this.#refuse(err as Error, from, signal);
      if (err instanceof ImageProtocolError) {
        await this.#answerError(stream, lp, 'BadRequest', err.message).catch(() => {});
      } else stream.abort(err as Error);
      return;
    }
    this.#pex.seen(request.digest, from);
    this.#onInterest?.(request.digest, from);
    let chunk = false;
    let release = () => {};
    let sent = false;
    let pass: FirstPass | undefined;
    try {
      if (request.op === 'chunk') {
        if (request.offers) pass = await this.#firstPass(request.digest);
        const offer = pass?.decide(request.index, from);
        if (offer) {
          this.declined++;
          await this.#answerError(
            stream,
            lp,
            'Declined',
            `chunk ${request.index} of ${request.digest} has just gone to another peer; take it from there`,
            offer,
          );
          return;
        }
        if (this.#serving >= this.#maxServing) {
          await this.#answerError(
            stream,
            lp,
            'Busy',
            `serving ${this.#serving} chunks already; ask another holder`,
          );
          return;
        }
        chunk = true;
        this.#serving++;
        release = await this.#slots.take(from, signal);
      }
      sent = await this.#answer(stream, lp, request, from, signal);
    } catch (err) {
      if (!gone.signal.aborted && !stopped.aborted)
        this.#log.warn(
          { err, peer: from },
          `serving ${request.op} of ${request.digest} to ${from} failed: ${(err as Error).message}`,
        );
      stream.abort(err as Error);
    } finally {
      if (!sent && request.op === 'chunk') pass?.failed(request.index, from);
      release();
      if (chunk) this.#serving--;
      stream.removeEventListener('close', onClose);
    }
  }

  async #answer(
    stream: Stream,
    lp: LengthPrefixedStream<Stream>,
    request: ImageRequest,
    from: string,
    signal: AbortSignal,
  ): Promise<boolean> {
    const { digest } = request;
    const manifest = await this.#store.manifest(digest);
    if (!manifest) return this.#refused(stream, lp, 'NotHeld', `this host holds no image ${digest}`);
    const held = manifestDigest(manifest);
    let body: Uint8Array;
    let peers: string[] = [];
    if (request.op === 'manifest') body = manifest;
    else if (request.op === 'have') {
      const have = await this.#store.haveBitmap(digest);
      if (!have) return this.#refused(stream, lp, 'NotHeld', `this host holds no image ${digest}`);
      body = have;
      peers = this.#pex.others(digest, from);
    } else {
      if (request.manifest !== held)
        return this.#refused(
          stream,
          lp,
          'ManifestMismatch',
          `this host holds ${digest} cut by manifest ${held}, not ${request.manifest}`,
        );
      const bytes = await this.#store.readChunk(digest, request.index, { signal, verify: this.#verify });
      if (!bytes) {
        const damaged = await this.#damaged(digest, request.index);
        return this.#refused(
          stream,
          lp,
          'ChunkNotHeld',
          damaged
            ? `chunk ${request.index} of ${digest} is damaged on this host; ask another holder`
            : `this host does not hold chunk ${request.index} of ${digest} (yet)`,
        );
      }
      body = bytes;
    }
    const header = { ok: true, manifest: held, length: body.byteLength };
    await lp.write(
      encodeFrame(peers.length ? { ...header, peers } : header, MAX_HEADER_BYTES, 'the header'),
      { signal },
    );
    const idle = new IdleTimeout(this.#idleTimeoutMs, signal);
    try {
      for (let at = 0; at < body.byteLength; at += MAX_FRAME_BYTES) {
        const frame = body.subarray(at, at + MAX_FRAME_BYTES);
        if (request.op === 'chunk') await throttle(this.#bucket, frame.byteLength, signal);
        idle.arm();
        await waitForRoom(stream, MAX_QUEUED_BYTES, idle.signal);
        idle.pause();
        await lp.write(frame, { signal });
        if (request.op === 'chunk') this.bytesSent += frame.byteLength;
      }
    } finally {
      idle.pause();
    }
    await stream.close({ signal: AbortSignal.any([signal, AbortSignal.timeout(this.#idleTimeoutMs)]) });
    return true;
  }

  /** The seeding state of `digest` when this host is where its swarm starts (it holds the image whole and
   *  did not pull it: a host that pulled it has nothing to gain from declining), else undefined. */
  async #firstPass(digest: string): Promise<FirstPass | undefined> {
    if (this.#firstPassInit === false) return undefined;
    const known = this.#firstPasses.get(digest);
    if (known) return known;
    const manifest = await this.#store.manifest(digest);
    if (!manifest || !(await this.#store.seeds(digest))) return undefined;
    const pass =
      this.#firstPasses.get(digest) ??
      new FirstPass(parseManifest(manifest).chunks.length, this.#firstPassInit);
    this.#firstPasses.set(digest, pass);
    if (this.#firstPasses.size > MAX_FIRST_PASSES)
      this.#firstPasses.delete(this.#firstPasses.keys().next().value as string);
    return pass;
  }

  /** A chunk the have bitmap lists that no longer reads back as its manifest says: the disk changed it.
   *  Said once per chunk (and counted), so the operator learns of it; it is never sent. */
  async #damaged(digest: string, index: number): Promise<boolean> {
    const have = await this.#store.haveBitmap(digest);
    if (!have || (have[index >> 3] & (1 << (index & 7))) === 0) return false;
    const key = `${digest} ${index}`;
    if (!this.#damagedSeen.has(key)) {
      this.#damagedSeen.add(key);
      this.damagedChunks++;
      this.#log.warn(
        { digest, index },
        `chunk ${index} of image ${digest} is damaged on this host (its bytes no longer match the manifest); ` +
          'it is not served, peers get it from other holders; remove the image (it is pulled again when needed)',
      );
    }
    return true;
  }

  async #answerError(
    stream: Stream,
    lp: LengthPrefixedStream<Stream>,
    code: ErrorCode,
    message: string,
    offer?: number[],
  ) {
    const signal = AbortSignal.timeout(this.#requestTimeoutMs);
    const error = offer ? { code, message, offer } : { code, message };
    await lp.write(encodeFrame({ error }, MAX_HEADER_BYTES, 'the error'), { signal });
    await stream.close({ signal });
  }

  /** Answers an error to a request that is not served: nothing was sent. */
  async #refused(stream: Stream, lp: LengthPrefixedStream<Stream>, code: ErrorCode, message: string) {
    await this.#answerError(stream, lp, code, message);
    return false;
  }

  #refuse(err: Error, from: string, signal: AbortSignal): void {
    if (signal.aborted) return; // the peer left or this host stops: nothing to count
    const name = err.name;
    if (err instanceof ImageProtocolError)
      this.refusals.count('malformed', `request from ${from}: ${err.message}`);
    else if (
      name === 'InvalidDataLengthError' ||
      name === 'InvalidMessageLengthError' ||
      name === 'InvalidDataLengthLengthError'
    )
      this.refusals.count('too_large', `request from ${from}: over the ${MAX_REQUEST_BYTES}-byte cap`);
    else if (name === 'TimeoutError' || name === 'AbortError')
      this.refusals.count(
        'timeout',
        `request from ${from}: not received within ${this.#requestTimeoutMs} ms`,
      );
    else this.#log.debug({ err, peer: from }, `image request from ${from} failed: ${err.message}`);
  }
}
