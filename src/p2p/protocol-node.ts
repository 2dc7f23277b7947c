// What a stream protocol of Xenos (instance logs, state replication) uses of a libp2p node: serve a
// protocol and dial a peer on one. XenosNode has it; a protocol module depends on this instead of on
// XenosNode, so it can be tested over a bare libp2p node.

import type { Stream, StreamHandler, StreamHandlerOptions } from '@libp2p/interface';

export interface ProtocolNode {
  handle(protocol: string, handler: StreamHandler, options?: StreamHandlerOptions): Promise<void>;
  unhandle(protocol: string): Promise<void>;
  dialProtocol(
    peer: string,
    protocol: string,
    options?: { signal?: AbortSignal; timeout?: number },
  ): Promise<Stream>;
}
