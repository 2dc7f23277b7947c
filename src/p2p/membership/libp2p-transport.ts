// The membership transport over the cluster's libp2p connections (already authenticated: cluster key,
// Noise), so a message's sender is the connection's remote peer. Two protocols:
//
// - /xenos/swim/1.0.0, the probe channel: ONE long-lived outbound stream per peer, reused for every
//   message to it (varint-length-prefixed, ≤ 8 KiB each); the peer answers on its own stream to us. So
//   membership holds at most one stream per direction per peer however often it probes, and never
//   meets libp2p's per-protocol stream limits. At most `maxStreams` (64) are kept open, least recently
//   used closed first; a stream idle for 2 minutes is closed by libp2p and reopened when needed.
// - /xenos/swim/sync/1.0.0, the sync channel: one short stream per full-state message (≤ 2 MiB), at
//   most 2 sending at once (a message past that is dropped, as a datagram would be).
//
// Sending never waits and never throws: a message to a peer that cannot be reached is lost, which SWIM
// is built for. What a peer sends over the cap, or as a broken length prefix, is refused before the
// body is read, the stream aborted, and the refusal counted in `refusals`.

import type { Connection, Stream } from '@libp2p/interface';
import { LengthPrefixedDecoder } from '@libp2p/utils';
import type { Log } from '../../log/logger.ts';
import { RefusalCounter } from '../../metrics/refusals.ts';
import type { ProtocolNode } from '../protocol-node.ts';
import { type Channel, capOf, SWIM_PROTOCOL, SWIM_SYNC_PROTOCOL } from './messages.ts';
import type { DatagramTransport, MessageHandler } from './transport.ts';

export const STREAM_REFUSAL_REASONS = ['too_large', 'malformed'] as const;
export type StreamRefusalReason = (typeof STREAM_REFUSAL_REASONS)[number];

/** What this transport uses of a libp2p node; src/p2p's XenosNode has it. */
export interface MembershipNode extends ProtocolNode {
  readonly peerId: { toString(): string };
  connectedPeers(): string[];
}

export interface Libp2pDatagramTransportComponents {
  node: MembershipNode;
  log?: Log;
}

export interface Libp2pDatagramTransportInit {
  /** Outbound probe streams kept open at once (default 64). */
  maxStreams?: number;
  /** How long opening a stream may take (default 2 s). */
  dialTimeoutMs?: number;
  /** Bytes queued on one stream above which further messages are dropped (default 64 KiB). */
  maxQueuedBytes?: number;
}

interface Outbound {
  stream?: Stream;
  opening: boolean;
  /** Messages waiting for the stream to open (at most 64). */
  queue: Uint8Array[];
  usedAt: number;
}

const MAX_QUEUED_WHILE_OPENING = 64;
const MAX_SYNC_SENDS = 2;

export class Libp2pDatagramTransport implements DatagramTransport {
  readonly self: string;
  /** Streams from peers refused at the framing (before the protocol parses anything). */
  readonly refusals: RefusalCounter<StreamRefusalReason>;
  /** Messages dropped on the way out (no stream, queue full), by channel. */
  readonly dropped: Record<Channel, number> = { probe: 0, sync: 0 };
  readonly #node: MembershipNode;
  readonly #log: Log | undefined;
  readonly #maxStreams: number;
  readonly #dialTimeout: number;
  readonly #maxQueued: number;
  readonly #outbound = new Map<string, Outbound>();
  readonly #addrs = new Map<string, string[]>();
  #syncSends = 0;
  #handler: MessageHandler | undefined;
  #running = false;
  #stop = new AbortController();

  constructor(components: Libp2pDatagramTransportComponents, init: Libp2pDatagramTransportInit = {}) {
    this.#node = components.node;
    this.#log = components.log;
    this.self = this.#node.peerId.toString();
    this.#maxStreams = init.maxStreams ?? 64;
    this.#dialTimeout = init.dialTimeoutMs ?? 2000;
    this.#maxQueued = init.maxQueuedBytes ?? 64 * 1024;
    this.refusals = new RefusalCounter({
      name: 'xenos_membership_streams_refused_total',
      help: 'Membership streams from peers aborted at the framing (over the cap, broken length), by reason.',
      reasons: STREAM_REFUSAL_REASONS,
      log: this.#log,
    });
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#stop = new AbortController();
    await this.#node.handle(SWIM_PROTOCOL, (stream, conn) => this.#serve(stream, conn, 'probe'), {
      maxInboundStreams: 4,
      maxOutboundStreams: 4,
    });
    await this.#node.handle(SWIM_SYNC_PROTOCOL, (stream, conn) => this.#serve(stream, conn, 'sync'), {
      maxInboundStreams: 4,
      maxOutboundStreams: MAX_SYNC_SENDS + 2,
    });
    this.#running = true;
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#stop.abort(new Error('membership transport stopping'));
    for (const out of this.#outbound.values()) out.stream?.abort(new Error('membership stopping'));
    this.#outbound.clear();
    await this.#node.unhandle(SWIM_PROTOCOL);
    await this.#node.unhandle(SWIM_SYNC_PROTOCOL);
  }

  onMessage(handler: MessageHandler): void {
    this.#handler = handler;
  }

  setAddresses(peer: string, addrs: string[]): void {
    this.#addrs.set(peer, addrs);
  }

  forget(peer: string): void {
    this.#addrs.delete(peer);
    this.#outbound.get(peer)?.stream?.abort(new Error('member forgotten'));
    this.#outbound.delete(peer);
  }

  send(peer: string, bytes: Uint8Array, channel: Channel): void {
    if (!this.#running || peer === this.self || bytes.byteLength > capOf(channel)) {
      this.dropped[channel]++;
      return;
    }
    const frame = framed(bytes);
    if (channel === 'sync') {
      this.#sendOnce(peer, frame);
      return;
    }
    let out = this.#outbound.get(peer);
    if (out?.stream && out.stream.status !== 'open') {
      this.#outbound.delete(peer);
      out = undefined;
    }
    if (!out) {
      out = { opening: false, queue: [], usedAt: performance.now() };
      this.#outbound.set(peer, out);
      this.#evict();
    }
    out.usedAt = performance.now();
    if (out.stream) {
      this.#write(peer, out, frame);
      return;
    }
    if (out.queue.length >= MAX_QUEUED_WHILE_OPENING) {
      this.dropped.probe++;
      return;
    }
    out.queue.push(frame);
    if (!out.opening) this.#open(peer, out);
  }

  #open(peer: string, out: Outbound): void {
    out.opening = true;
    this.#node
      .dialProtocol(this.#target(peer), SWIM_PROTOCOL, {
        signal: this.#stop.signal,
        timeout: this.#dialTimeout,
      })
      .then(
        (stream) => {
          out.opening = false;
          if (!this.#running || this.#outbound.get(peer) !== out) {
            stream.abort(new Error('not needed any more'));
            return;
          }
          out.stream = stream;
          // Nothing is expected on our own outbound stream: answers come on the peer's.
          stream.addEventListener('message', () => {});
          stream.addEventListener('close', () => {
            if (this.#outbound.get(peer)?.stream === stream) this.#outbound.delete(peer);
          });
          const queued = out.queue.splice(0);
          for (const frame of queued) this.#write(peer, out, frame);
        },
        (err: Error) => {
          out.opening = false;
          this.dropped.probe += out.queue.length;
          out.queue = [];
          if (this.#outbound.get(peer) === out) this.#outbound.delete(peer);
          if (this.#running) this.#log?.debug(`membership: no stream to ${peer.slice(-8)}: ${err.message}`);
        },
      );
  }

  #write(peer: string, out: Outbound, frame: Uint8Array): void {
    const stream = out.stream!;
    if (stream.status !== 'open' || stream.writeBufferLength > this.#maxQueued) {
      this.dropped.probe++;
      if (stream.status !== 'open') this.#outbound.delete(peer);
      return;
    }
    try {
      stream.send(frame);
    } catch {
      this.dropped.probe++;
      this.#outbound.delete(peer);
    }
  }

  /** Closes the least recently used streams beyond maxStreams. */
  #evict(): void {
    if (this.#outbound.size <= this.#maxStreams) return;
    const oldest = [...this.#outbound.entries()].sort((a, b) => a[1].usedAt - b[1].usedAt);
    for (const [peer, out] of oldest.slice(0, this.#outbound.size - this.#maxStreams)) {
      this.#outbound.delete(peer);
      out.stream?.close().catch((err: Error) => out.stream?.abort(err));
    }
  }

  #sendOnce(peer: string, frame: Uint8Array): void {
    if (this.#syncSends >= MAX_SYNC_SENDS) {
      this.dropped.sync++;
      return;
    }
    this.#syncSends++;
    const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(10_000)]);
    (async () => {
      const stream = await this.#node.dialProtocol(this.#target(peer), SWIM_SYNC_PROTOCOL, {
        signal,
        timeout: this.#dialTimeout,
      });
      try {
        stream.send(frame);
        await stream.close({ signal });
      } catch (err) {
        stream.abort(err as Error);
        throw err;
      }
    })()
      .catch((err: Error) => {
        this.dropped.sync++;
        if (this.#running) this.#log?.debug(`membership: sync to ${peer.slice(-8)} not sent: ${err.message}`);
      })
      .finally(() => {
        this.#syncSends--;
      });
  }

  /** A connected peer by its id; otherwise its first signed address, so one learnt from gossip is reachable. */
  #target(peer: string): string {
    const addrs = this.#addrs.get(peer);
    if (!addrs?.length || this.#node.connectedPeers().includes(peer)) return peer;
    const addr = addrs[0];
    return addr.endsWith(`/p2p/${peer}`) ? addr : `${addr}/p2p/${peer}`;
  }

  /** Reads length-prefixed messages from a peer's stream until it ends; refuses a frame over the cap
   *  before its body arrives. The sync channel carries one message per stream. */
  #serve(stream: Stream, connection: Connection, channel: Channel): void {
    const from = connection.remotePeer.toString();
    const cap = capOf(channel);
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, cap + 64);
    const decoder = new LengthPrefixedDecoder({ maxDataLength: cap, maxBufferSize: cap + 16 });
    stream.addEventListener('message', (evt) => {
      try {
        for (const msg of decoder.decode(evt.data)) {
          this.#handler?.(from, msg.subarray(), channel);
          if (channel === 'sync') {
            stream.close().catch((err: Error) => stream.abort(err));
            return;
          }
        }
      } catch (err) {
        const name = (err as Error).name;
        const reason: StreamRefusalReason = name === 'InvalidMessageLengthError' ? 'too_large' : 'malformed';
        this.refusals.count(reason, `${channel} stream from ${from.slice(-8)}: ${(err as Error).message}`);
        stream.abort(err as Error);
      }
    });
  }
}

/** `bytes` with its unsigned-varint length in front (the framing lpStream uses). */
function framed(bytes: Uint8Array): Uint8Array {
  const prefix: number[] = [];
  let n = bytes.byteLength;
  while (n >= 0x80) {
    prefix.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  prefix.push(n);
  const out = new Uint8Array(prefix.length + bytes.byteLength);
  out.set(prefix, 0);
  out.set(bytes, prefix.length);
  return out;
}
