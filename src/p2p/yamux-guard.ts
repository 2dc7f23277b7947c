// A guard around one race in @chainsafe/libp2p-yamux 8.0.1 that otherwise kills xenosd. When a stream is
// opened on a connection that closes in the same tick (a peer going away while replication or a SWIM
// probe dials it), yamux sends the stream's opening window update from a queued microtask; the
// connection is closed by then, the write throws StreamStateError inside the microtask, nobody can catch
// it and Node ends the process ("Cannot write to a stream that is closed", seen with 30 hosts on two
// cores). A window update on a dead connection has nowhere to go: the guard turns that throw into an abort
// of the one stream, which its opener sees as a failed stream (the peer unreachable, retried as usual).
// Applied once, when the p2p node is built; any other error still throws.

import { YamuxStream } from '@chainsafe/libp2p-yamux/stream';

let installed = false;

/** Makes a window update on an already-closed connection abort its stream instead of throwing. */
export function guardYamuxWindowUpdates(): void {
  if (installed) return;
  installed = true;
  const send = YamuxStream.prototype.sendWindowUpdate;
  YamuxStream.prototype.sendWindowUpdate = function guardedSendWindowUpdate(this: YamuxStream): void {
    try {
      send.call(this);
    } catch (err) {
      if (!(err instanceof Error) || err.name !== 'StreamStateError') throw err;
      this.abort(err);
    }
  };
}
