// Flow control on a libp2p stream that libp2p does not give by itself (measured: `send()` returns false
// but its drain resolves at once, so a writer's queue grows to the whole payload): a writer waits while
// more than a cap is queued, and a reader pauses and resumes the stream around slow consumers. Used by
// every protocol that moves bulk bytes (instance logs, image chunks).
//
// A pause asked for inside the 'message' dispatch that `resume()` makes waits until resume() has returned.
// libp2p's resume() hands over what the stream buffered, then reopens Yamux's window, so a pause made
// during the hand-over (the reader full again) would be undone at once and the sender would go unchecked
// until libp2p aborted the stream at its read-buffer cap (found as a live migration's broken memory
// stream: StreamBufferError at 32 MiB). `flow()` keeps that rule for every reader.

import type { Stream } from '@libp2p/interface';

/** Waits while more than `maxQueued` bytes wait to be sent on `stream`. Rejects with an AbortError (its
 *  cause the signal's reason) when `signal` aborts, and when the stream stops being open. */
export async function waitForRoom(stream: Stream, maxQueued: number, signal: AbortSignal): Promise<void> {
  while (stream.writeBufferLength > maxQueued) {
    if (stream.status !== 'open') throw new Error(`the stream is ${stream.status}`);
    await roomOrEnd(stream, signal);
  }
  // An aborted or reset stream drops what it queued: its queue is empty, and nothing was sent.
  if (stream.status === 'aborted' || stream.status === 'reset')
    throw new Error(`the stream is ${stream.status}`);
}

/** The stream's next 'drain', 'idle' or 'close', or the abort of `signal`: one promise and four listeners,
 *  all removed when it settles (a long transfer waits here thousands of times, so no signals are made). */
function roomOrEnd(stream: Stream, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const settle = (aborted: boolean) => {
      for (const type of STREAM_EVENTS) stream.removeEventListener(type, onEvent);
      signal.removeEventListener('abort', onAbort);
      if (aborted) reject(abortError(signal));
      else resolve();
    };
    const onEvent = () => settle(false);
    const onAbort = () => settle(true);
    if (signal.aborted) {
      reject(abortError(signal));
      return;
    }
    for (const type of STREAM_EVENTS) stream.addEventListener(type, onEvent);
    signal.addEventListener('abort', onAbort);
  });
}

const STREAM_EVENTS = ['drain', 'idle', 'close'] as const;

/** As node's events.once rejects on an abort: an AbortError whose cause is the signal's reason. */
function abortError(signal: AbortSignal): Error {
  const err = new Error('The operation was aborted', { cause: signal.reason });
  err.name = 'AbortError';
  return err;
}

/** Streams whose resume() is handing over what they buffered now, and whether a pause was asked for
 *  meanwhile. */
const resuming = new WeakMap<Stream, { pauseAfter: boolean }>();

/** Pauses or resumes reading; a stream whose readable end already closed has nothing left to hold. A pause
 *  asked for while resume() hands over the stream's buffer is made once resume() has returned (and a resume
 *  asked for meanwhile cancels it). */
export function flow(stream: Stream, what: 'pause' | 'resume'): void {
  const during = resuming.get(stream);
  if (during) {
    during.pauseAfter = what === 'pause';
    return;
  }
  if (what === 'pause') {
    call(stream, 'pause');
    return;
  }
  const state = { pauseAfter: false };
  resuming.set(stream, state);
  try {
    call(stream, 'resume');
  } finally {
    resuming.delete(stream);
  }
  if (state.pauseAfter) call(stream, 'pause');
}

function call(stream: Stream, what: 'pause' | 'resume'): void {
  try {
    stream[what]();
  } catch {
    // closing or closed: the next read reports how it ended
  }
}
