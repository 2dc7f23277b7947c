// A SyncTransport inside one process, for unit tests and fault injection: endpoints of one
// MemoryNetwork reach each other unless the test cuts the link between them (partition, isolate).
// Every message goes through the wire codec (JSON, size cap) and is delivered on a later tick, so
// code that passes here does not rely on shared objects or synchronous delivery. The libp2p
// transport passes the same contract tests (test/store/replication-contract.ts).

import { DEFAULT_MAX_MESSAGE_BYTES, decodeMessage, encodeMessage, isReplyEnvelope } from './codec.ts';
import { MalformedMessageError, PeerUnreachableError, RemoteError } from './errors.ts';
import type { RequestOptions, SyncRequestHandler, SyncTransport } from './transport.ts';

export interface MemoryNetworkInit {
  maxMessageBytes?: number;
  /** Delivery delay of each message in ms (default 0: next tick). */
  latencyMs?: number;
}

export class MemoryNetwork {
  readonly maxMessageBytes: number;
  readonly latencyMs: number;
  private readonly endpoints = new Map<string, MemoryTransport>();
  private readonly cuts = new Set<string>();

  constructor(init: MemoryNetworkInit = {}) {
    this.maxMessageBytes = init.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.latencyMs = init.latencyMs ?? 0;
  }

  /** A new endpoint named `id` (unstarted). */
  endpoint(id: string): MemoryTransport {
    if (this.endpoints.has(id)) throw new Error(`memory network: endpoint ${id} exists already`);
    const t = new MemoryTransport(this, id);
    this.endpoints.set(id, t);
    return t;
  }

  /** Whether a and b can talk now: both started and the link between them not cut. */
  connected(a: string, b: string): boolean {
    if (a === b) return false;
    const x = this.endpoints.get(a);
    const y = this.endpoints.get(b);
    return !!x?.running && !!y?.running && !this.cuts.has(pairKey(a, b));
  }

  /** Cuts every link between different groups. */
  partition(...groups: string[][]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = i + 1; j < groups.length; j++) {
        for (const a of groups[i]) for (const b of groups[j]) this.cuts.add(pairKey(a, b));
      }
    }
  }

  /** Cuts every link of `id`. */
  isolate(id: string): void {
    for (const other of this.endpoints.keys()) if (other !== id) this.cuts.add(pairKey(id, other));
  }

  /** Restores every cut link and tells both ends that the other is up. */
  heal(): void {
    const restored = [...this.cuts].map((k) => k.split('\n') as [string, string]);
    this.cuts.clear();
    for (const [a, b] of restored) this.announce(a, b);
  }

  /** peers() of `id`. */
  peersOf(id: string): string[] {
    return [...this.endpoints.keys()].filter((other) => this.connected(id, other));
  }

  /** Tells a and b about each other, if they are connected. */
  announce(a: string, b: string): void {
    if (!this.connected(a, b)) return;
    this.endpoints.get(a)?.peerUp(b);
    this.endpoints.get(b)?.peerUp(a);
  }

  /** Every endpoint id. */
  ids(): string[] {
    return [...this.endpoints.keys()];
  }

  endpointOf(id: string): MemoryTransport | undefined {
    return this.endpoints.get(id);
  }
}

export class MemoryTransport implements SyncTransport {
  readonly self: string;
  running = false;
  private readonly network: MemoryNetwork;
  private handler: SyncRequestHandler | undefined;
  private readonly listeners = new Set<(peer: string) => void>();
  private stopController = new AbortController();

  constructor(network: MemoryNetwork, id: string) {
    this.network = network;
    this.self = id;
  }

  async start(): Promise<void> {
    if (this.running) return;
    if (!this.handler) throw new Error('memory transport: set onRequest() before start()');
    this.running = true;
    this.stopController = new AbortController();
    for (const other of this.network.ids()) this.network.announce(this.self, other);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopController.abort(new Error(`memory transport ${this.self} stopped`));
  }

  peers(): string[] {
    return this.network.peersOf(this.self);
  }

  onRequest(handler: SyncRequestHandler): void {
    this.handler = handler;
  }

  onPeerUp(listener: (peer: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called by the network. */
  peerUp(peer: string): void {
    for (const l of this.listeners) l(peer);
  }

  async request(peer: string, message: unknown, opts: RequestOptions = {}): Promise<unknown> {
    const max = this.network.maxMessageBytes;
    const bytes = encodeMessage(message, max, `request to ${peer}`);
    await this.hop(opts.signal);
    const target = this.network.endpointOf(peer);
    if (!target || !this.network.connected(this.self, peer)) throw new PeerUnreachableError(peer);
    const replyBytes = await target.serve(this.self, bytes, opts.signal);
    await this.hop(opts.signal);
    if (!this.network.connected(this.self, peer))
      throw new PeerUnreachableError(peer, 'link cut during the request');
    const reply = decodeMessage(replyBytes, max, `reply from ${peer}`);
    if (!isReplyEnvelope(reply)) throw new MalformedMessageError(`reply from ${peer} is not {ok} or {error}`);
    if ('error' in reply) throw new RemoteError(peer, reply.error);
    return reply.ok;
  }

  /** Serves one request that arrived from `from`; the encoded reply envelope. */
  private async serve(from: string, bytes: Uint8Array, signal?: AbortSignal): Promise<Uint8Array> {
    const max = this.network.maxMessageBytes;
    const handler = this.handler;
    if (!handler) throw new PeerUnreachableError(this.self, 'not serving');
    const combined = signal
      ? AbortSignal.any([signal, this.stopController.signal])
      : this.stopController.signal;
    let envelope: unknown;
    try {
      const message = decodeMessage(bytes, max, `request from ${from}`);
      envelope = { ok: await handler(from, message, { signal: combined }) };
    } catch (err) {
      envelope = { error: (err as Error).message };
    }
    try {
      return encodeMessage(envelope, max, `reply to ${from}`);
    } catch (err) {
      return encodeMessage({ error: (err as Error).message }, max);
    }
  }

  private hop(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    return new Promise((resolve) => setTimeout(resolve, this.network.latencyMs));
  }
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}\n${b}` : `${b}\n${a}`;
}
