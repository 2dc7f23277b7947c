// Flow control on a libp2p stream that libp2p does not give by itself (measured: `send()` returns false
// but its drain resolves at once, so a writer's queue grows to the whole payload): a writer waits while
// more than a cap is queued, and a reader pauses and resumes the stream around slow consumers. Used by
// every protocol that moves bulk bytes (instance logs, image chunks).
//
// One rule for readers: never pause from inside the 'message' dispatch that `resume()` makes. libp2p's
// resume() hands over what the stream buffered, then reopens Yamux's window, so such a pause is undone at
// once and the sender goes unchecked until libp2p aborts the stream at its read-buffer cap.
// stream-duplex.ts defers its pause past resume() for this; the logs and image readers pause and resume
// around their own awaits, outside that dispatch.

import { once } from 'node:events';
import type { Stream } from '@libp2p/interface';

/** Waits while more than `maxQueued` bytes wait to be sent on `stream`. */
export async function waitForRoom(stream: Stream, maxQueued: number, signal: AbortSignal): Promise<void> {
  while (stream.writeBufferLength > maxQueued) {
    if (stream.status !== 'open') throw new Error(`the stream is ${stream.status}`);
    // Whichever comes first; the other two listeners go with it (a long transfer waits thousands of times).
    const waited = new AbortController();
    const either = AbortSignal.any([signal, waited.signal]);
    try {
      await Promise.race([
        once(stream, 'drain', { signal: either }),
        once(stream, 'idle', { signal: either }),
        once(stream, 'close', { signal: either }),
      ]);
    } finally {
      waited.abort();
    }
  }
  // An aborted or reset stream drops what it queued: its queue is empty, and nothing was sent.
  if (stream.status === 'aborted' || stream.status === 'reset')
    throw new Error(`the stream is ${stream.status}`);
}

/** Pauses or resumes reading; a stream whose readable end already closed has nothing left to hold. */
export function flow(stream: Stream, what: 'pause' | 'resume'): void {
  try {
    stream[what]();
  } catch {
    // closing or closed: the next read reports how it ended
  }
}
