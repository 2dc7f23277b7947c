// What state replication needs from the network, and nothing more: who is connected, one
// request → one reply to a peer, serving requests from peers, and news of a peer (re)appearing.
// Two implementations pass the same contract tests: libp2p-transport.ts (the real one: a stream
// protocol on the host's libp2p node) and memory-transport.ts (in one process, for unit tests and
// fault injection). Messages are plain JSON values; both transports encode them with codec.ts and
// enforce the same size cap, so a message that works in memory works on the wire.

export interface RequestOptions {
  signal?: AbortSignal;
}

/** Serves one request from `from`; what it resolves to is the reply. A throw becomes an error
 *  reply (the requester's request() rejects with RemoteError). */
export type SyncRequestHandler = (
  from: string,
  message: unknown,
  opts: { signal: AbortSignal },
) => Promise<unknown>;

export interface SyncTransport {
  /** This host's id on the network (the libp2p peer id). */
  readonly self: string;
  /** Starts serving requests (the handler must be set first). A second start() does nothing. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Ids of the peers connected now. */
  peers(): string[];
  /** Sends `message` to `peer` and resolves to its reply. Rejects with PeerUnreachableError,
   *  RemoteError, MessageTooLargeError, MalformedMessageError, or the abort/timeout reason. */
  request(peer: string, message: unknown, opts?: RequestOptions): Promise<unknown>;
  /** Sets the handler for requests from peers (one per transport). */
  onRequest(handler: SyncRequestHandler): void;
  /** Calls `listener` whenever a peer connects; returns a function that stops it. */
  onPeerUp(listener: (peer: string) => void): () => void;
}
