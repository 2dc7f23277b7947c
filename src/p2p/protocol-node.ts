// What a stream protocol of Xenos (instance logs, state replication) uses of a libp2p node: serve a
// protocol and dial a peer on one. XenosNode has it; a protocol module depends on this instead of on
// XenosNode, so it can be tested over a bare libp2p node. serveProtocol is how a protocol's server (image
// chunks, migrations, layer copies) serves its streams until it stops.

import type { Connection, Stream, StreamHandler, StreamHandlerOptions } from '@libp2p/interface';

export interface ProtocolNode {
  handle(protocol: string, handler: StreamHandler, options?: StreamHandlerOptions): Promise<void>;
  unhandle(protocol: string): Promise<void>;
  dialProtocol(
    peer: string,
    protocol: string,
    options?: { signal?: AbortSignal; timeout?: number },
  ): Promise<Stream>;
}

/** Serves one stream from `connection`; `signal` aborts when the protocol stops being served. */
export type ServeStream = (stream: Stream, connection: Connection, signal: AbortSignal) => Promise<void>;

/** A protocol being served (serveProtocol). */
export interface ServedProtocol {
  /** Aborts the signal of every stream being served, with `reason`, and stops taking new streams. */
  stop(reason: Error): Promise<void>;
}

/** Serves `protocol` on `node` (its stream limits in `options`), each inbound stream by `serve`, until
 *  stopped. */
export async function serveProtocol(
  node: ProtocolNode,
  protocol: string,
  serve: ServeStream,
  options: StreamHandlerOptions,
): Promise<ServedProtocol> {
  const stopping = new AbortController();
  await node.handle(
    protocol,
    (stream, connection) => void serve(stream, connection, stopping.signal),
    options,
  );
  return {
    async stop(reason) {
      stopping.abort(reason);
      await node.unhandle(protocol);
    },
  };
}
