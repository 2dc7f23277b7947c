// Flow control on a libp2p stream that libp2p does not give by itself (measured: `send()` returns false
// but its drain resolves at once, so a writer's queue grows to the whole payload): a writer waits while
// more than a cap is queued, and a reader pauses and resumes the stream around slow consumers. Used by
// every protocol that moves bulk bytes (instance logs, image chunks).

import { once } from 'node:events';
import type { Stream } from '@libp2p/interface';

/** Waits while more than `maxQueued` bytes wait to be sent on `stream`. */
export async function waitForRoom(stream: Stream, maxQueued: number, signal: AbortSignal): Promise<void> {
  while (stream.writeBufferLength > maxQueued) {
    if (stream.status !== 'open') throw new Error(`the stream is ${stream.status}`);
    await Promise.race([once(stream, 'drain', { signal }), once(stream, 'idle', { signal })]);
  }
}

/** Pauses or resumes reading; a stream whose readable end already closed has nothing left to hold. */
export function flow(stream: Stream, what: 'pause' | 'resume'): void {
  try {
    stream[what]();
  } catch {
    // closing or closed: the next read reports how it ended
  }
}
