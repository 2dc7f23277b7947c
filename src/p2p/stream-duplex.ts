// A libp2p stream as a Node.js Duplex, for code that speaks node:stream (tar, a hypervisor's migration
// socket) over a cluster connection. Flow control both ways (see stream-flow.ts): a write completes only
// once at most `maxQueuedBytes` wait in the stream's send queue, and a reader that stops taking bytes
// pauses the stream, so the sender is held back by the muxer's window. Half-close both ways: `end()`
// closes the writable side (the peer's readable ends), the peer's close ends ours. A reset, a lost
// connection or `destroy(err)` errors both sides.

import { Duplex } from 'node:stream';
import type { Stream } from '@libp2p/interface';
import { flow, waitForRoom } from './stream-flow.ts';

/** Measured here: bytes queued beyond a few hundred KiB add directly to how long the last write takes to
 *  arrive (a live migration's pause), and gain no throughput. */
export const DEFAULT_MAX_QUEUED_BYTES = 256 * 1024;
/** Above a Yamux window (16 MiB): a paused reader must be able to hold what the sender may have in flight. */
export const DEFAULT_READ_BUFFER_BYTES = 32 * 1024 * 1024;

export interface StreamDuplexInit {
  maxQueuedBytes?: number;
  readBufferBytes?: number;
}

export function streamDuplex(stream: Stream, init: StreamDuplexInit = {}): Duplex {
  const maxQueued = init.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
  stream.maxReadBufferLength = Math.max(
    stream.maxReadBufferLength,
    init.readBufferBytes ?? DEFAULT_READ_BUFFER_BYTES,
  );
  const closed = new AbortController();
  let ended = false;
  const duplex = new Duplex({
    allowHalfOpen: true,
    read() {
      // Its buffered bytes come to onMessage before this returns; a pause from there waits for resume()'s
      // end (stream-flow.ts says why).
      flow(stream, 'resume');
    },
    write(chunk: Buffer, _encoding, callback) {
      try {
        stream.send(chunk);
      } catch (err) {
        callback(err as Error);
        return;
      }
      waitForRoom(stream, maxQueued, closed.signal).then(
        () => callback(),
        (err: Error) => callback(closed.signal.aborted ? (closed.signal.reason as Error) : err),
      );
    },
    final(callback) {
      stream.close({ signal: closed.signal }).then(
        () => callback(),
        (err: Error) => callback(err),
      );
    },
    destroy(err, callback) {
      // A write still waiting for room ends now, with this error: the stream will not take it.
      closed.abort(err ?? new Error('the stream was destroyed'));
      detach();
      // Both halves done (Node destroys a finished Duplex itself): the stream closed cleanly, nothing to
      // reset. Anything else — an error, or destroy() before the end — resets it, so the peer knows.
      const clean = !err && duplex.writableFinished && duplex.readableEnded;
      if (!clean && (stream.status === 'open' || stream.status === 'closing'))
        stream.abort(err ?? new Error('the local side closed the stream before it ended'));
      callback(err);
    },
  });
  const end = () => {
    if (ended) return;
    ended = true;
    duplex.push(null);
  };
  const onMessage = (evt: { data: Uint8Array | { subarray(): Uint8Array } }) => {
    const data = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray();
    if (!duplex.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength))) flow(stream, 'pause');
  };
  const onClose = (evt: Event) => {
    const error = (evt as Event & { error?: Error }).error;
    closed.abort(error ?? new Error('the stream closed'));
    if (error) duplex.destroy(error);
    else end();
  };
  const detach = () => {
    stream.removeEventListener('message', onMessage as never);
    stream.removeEventListener('end', end);
    stream.removeEventListener('close', onClose);
  };
  stream.addEventListener('message', onMessage as never);
  stream.addEventListener('end', end);
  stream.addEventListener('close', onClose);
  if (stream.readStatus === 'closed') end();
  return duplex;
}
