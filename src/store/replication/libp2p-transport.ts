// The SyncTransport over the host's libp2p node: a direct stream protocol, /xenos/state/1.0.0,
// one stream per request. The requester writes one length-prefixed (varint) JSON message and reads
// one length-prefixed reply; both sides refuse a length above the message cap before reading the
// body, and every request and every served stream has a timeout. Connections are already
// authenticated (cluster key, Noise), so a peer here is a host of the cluster — what it sends is
// still checked by the replicator before it is applied. Requests refused here (over the cap, not the
// protocol's JSON, too slow) are counted by reason in `refusals`.

import type { Connection, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { type Log, silentLogger } from '../../log/logger.ts';
import { RefusalCounter } from '../../metrics/refusals.ts';
import type { ProtocolNode } from '../../p2p/protocol-node.ts';
import { DEFAULT_MAX_MESSAGE_BYTES, decodeMessage, encodeMessage, isReplyEnvelope } from './codec.ts';
import { MalformedMessageError, PeerUnreachableError, RemoteError } from './errors.ts';
import type { RequestOptions, SyncRequestHandler, SyncTransport } from './transport.ts';

export const STATE_PROTOCOL = '/xenos/state/1.0.0';
const DEFAULT_TIMEOUT_MS = 10_000;
export const MESSAGE_REFUSAL_REASONS = ['too_large', 'malformed', 'timeout'] as const;
export type MessageRefusalReason = (typeof MESSAGE_REFUSAL_REASONS)[number];
/** lpStream's errors for a length prefix over the cap (or not a length at all). */
const LENGTH_ERRORS = new Set([
  'InvalidMessageLengthError',
  'InvalidDataLengthError',
  'InvalidDataLengthLengthError',
]);

/** What this transport uses of a libp2p node; src/p2p's XenosNode has it. */
export interface StreamNode extends EventTarget, ProtocolNode {
  readonly peerId: { toString(): string };
  connectedPeers(): string[];
}

export interface Libp2pTransportComponents {
  node: StreamNode;
  /** The cluster's live members (peer ids) as the membership knows them: pushed to even while no
   *  connection to them is open (the push dials), so a write reaches every host directly. Default: the
   *  connected peers only. */
  members?: () => string[];
  log?: Log;
}

export interface Libp2pTransportInit {
  protocol?: string;
  /** Cap of one message (request or reply). Default 4 MiB. */
  maxMessageBytes?: number;
  /** Timeout of a whole request (dial, send, reply) and of serving one stream. Default 10 s. */
  timeoutMs?: number;
  /** Concurrent streams of this protocol per connection. Default 64. */
  maxStreams?: number;
}

export class Libp2pTransport implements SyncTransport {
  /** Requests from peers refused before they reached the replicator (or by its parser), by reason. */
  readonly refusals: RefusalCounter<MessageRefusalReason>;
  /** Message bytes written to and read from peers (requests and replies), for the host's metrics. */
  bytesSent = 0;
  bytesReceived = 0;
  private readonly node: StreamNode;
  private readonly members: (() => string[]) | undefined;
  private readonly log: Log;
  private readonly protocol: string;
  private readonly maxBytes: number;
  private readonly timeoutMs: number;
  private readonly maxStreams: number;
  private handler: SyncRequestHandler | undefined;
  private running = false;
  private stopController = new AbortController();

  constructor(components: Libp2pTransportComponents, init: Libp2pTransportInit = {}) {
    this.node = components.node;
    this.members = components.members;
    this.log = components.log ?? silentLogger.root;
    this.protocol = init.protocol ?? STATE_PROTOCOL;
    this.maxBytes = init.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.timeoutMs = init.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxStreams = init.maxStreams ?? 64;
    this.refusals = new RefusalCounter({
      name: 'xenos_replication_messages_refused_total',
      help: 'State-replication requests from peers refused before or while parsing, by reason.',
      reasons: MESSAGE_REFUSAL_REASONS,
      log: this.log,
    });
  }

  get self(): string {
    return this.node.peerId.toString();
  }

  async start(): Promise<void> {
    if (this.running) return;
    if (!this.handler) throw new Error('libp2p state transport: set onRequest() before start()');
    this.stopController = new AbortController();
    await this.node.handle(this.protocol, (stream, connection) => this.serve(stream, connection), {
      maxInboundStreams: this.maxStreams,
      maxOutboundStreams: this.maxStreams,
    });
    this.running = true;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopController.abort(new Error('state transport stopping'));
    await this.node.unhandle(this.protocol);
  }

  /** The connected peers and the live members (without this host). */
  peers(): string[] {
    const connected = this.node.connectedPeers();
    if (!this.members) return connected;
    const all = new Set([...connected, ...this.members()]);
    all.delete(this.self);
    return [...all];
  }

  onRequest(handler: SyncRequestHandler): void {
    this.handler = handler;
  }

  onPeerUp(listener: (peer: string) => void): () => void {
    const onConnect = (evt: Event): void => listener(String((evt as CustomEvent<string>).detail));
    this.node.addEventListener('peer:connect', onConnect);
    return () => this.node.removeEventListener('peer:connect', onConnect);
  }

  async request(peer: string, message: unknown, opts: RequestOptions = {}): Promise<unknown> {
    const bytes = encodeMessage(message, this.maxBytes, `request to ${peer}`);
    const signal = this.signal(opts.signal);
    let stream: Stream;
    try {
      stream = await this.node.dialProtocol(peer, this.protocol, { signal, timeout: this.timeoutMs });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw new PeerUnreachableError(peer, (err as Error).message);
    }
    let raw: Uint8Array;
    try {
      stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, this.maxBytes + 65_536);
      const lp = lpStream(stream, { maxDataLength: this.maxBytes, maxBufferSize: this.maxBytes + 65_536 });
      await lp.write(bytes, { signal });
      this.bytesSent += bytes.byteLength;
      raw = (await lp.read({ signal })).subarray();
      this.bytesReceived += raw.byteLength;
      await stream.close({ signal });
    } catch (err) {
      stream.abort(err as Error);
      if (signal.aborted) throw signal.reason;
      throw err;
    }
    const reply = decodeMessage(raw, this.maxBytes, `reply from ${peer}`);
    if (!isReplyEnvelope(reply)) throw new MalformedMessageError(`reply from ${peer} is not {ok} or {error}`);
    if ('error' in reply) throw new RemoteError(peer, reply.error);
    return reply.ok;
  }

  /** Serves one inbound stream: one request, one reply. */
  private async serve(stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString();
    const signal = this.signal();
    try {
      stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, this.maxBytes + 65_536);
      const lp = lpStream(stream, { maxDataLength: this.maxBytes, maxBufferSize: this.maxBytes + 65_536 });
      const raw = (await lp.read({ signal })).subarray();
      this.bytesReceived += raw.byteLength;
      let envelope: unknown;
      try {
        const message = decodeMessage(raw, this.maxBytes, `request from ${from}`);
        const handler = this.handler;
        if (!handler) throw new Error('not serving');
        envelope = { ok: await handler(from, message, { signal }) };
      } catch (err) {
        if (err instanceof MalformedMessageError)
          this.refusals.count('malformed', `request from ${from}: ${err.message}`);
        envelope = { error: (err as Error).message };
      }
      let out: Uint8Array;
      try {
        out = encodeMessage(envelope, this.maxBytes, `reply to ${from}`);
      } catch (err) {
        out = encodeMessage({ error: (err as Error).message }, this.maxBytes);
      }
      await lp.write(out, { signal });
      this.bytesSent += out.byteLength;
      await stream.close({ signal });
    } catch (err) {
      const name = (err as Error).name;
      if (LENGTH_ERRORS.has(name) || name === 'InvalidParametersError') {
        this.refusals.count('too_large', `request from ${from}: over the ${this.maxBytes}-byte message cap`);
      } else if (signal.aborted && this.running) {
        this.refusals.count(
          'timeout',
          `request from ${from}: not received and answered within ${this.timeoutMs} ms`,
        );
      } else if (!signal.aborted || this.running) {
        this.log.warn({ err, peer: from }, `state stream from ${from} failed: ${(err as Error).message}`);
      }
      stream.abort(err as Error);
    }
  }

  private signal(caller?: AbortSignal): AbortSignal {
    const parts = [this.stopController.signal, AbortSignal.timeout(this.timeoutMs)];
    if (caller) parts.push(caller);
    return AbortSignal.any(parts);
  }
}
