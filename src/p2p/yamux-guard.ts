// A guard around one race in @chainsafe/libp2p-yamux 8.0.1 that otherwise kills xenosd. When a stream is
// opened on a connection that closes in the same tick (a peer going away while replication or a SWIM
// probe dials it), yamux sends the stream's opening window update from a queued microtask; the
// connection is closed by then, the write throws StreamStateError inside the microtask, nobody can catch
// it and Node ends the process ("Cannot write to a stream that is closed", seen with 30 hosts on two
// cores). A window update on a dead connection has nowhere to go: the guard turns that throw into an abort
// of the one stream, which its opener sees as a failed stream (the peer unreachable, retried as usual).
// Applied once, when the p2p node is built; any other error still throws.
//
// The same wrapper sends window updates as Go's yamux (and the spec's reference) does: only once half the
// receive window has been taken, or when the update must carry a flag (the ACK of a new stream). This
// yamux sent one back for every data frame, so each small message (a SWIM probe, its ack) cost two frames
// through the private network, Noise and a socket write each way. A sender never waits for it: half its
// window is still open when the update is due.

import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream';

/** Whether a window update can wait: no flag to carry, and less than half the window taken. The window's
 *  fields are private in the package's types, hence read by name. */
function updateCanWait(stream: YamuxStream): boolean {
  const window = Reflect.get(stream, 'recvWindow') as number;
  const available = Reflect.get(stream, 'recvWindowCapacity') as number;
  const carriesFlag = stream.state === StreamState.Init || stream.state === StreamState.SYNReceived;
  return !carriesFlag && stream.state !== StreamState.Paused && window - available < window / 2;
}

let installed = false;

/** Makes a window update on an already-closed connection abort its stream instead of throwing. */
export function guardYamuxWindowUpdates(): void {
  if (installed) return;
  installed = true;
  const send = YamuxStream.prototype.sendWindowUpdate;
  YamuxStream.prototype.sendWindowUpdate = function guardedSendWindowUpdate(this: YamuxStream): void {
    if (updateCanWait(this)) return;
    try {
      send.call(this);
    } catch (err) {
      if (!(err instanceof Error) || err.name !== 'StreamStateError') throw err;
      this.abort(err);
    }
  };
}
