// The writer's side of src/p2p/stream-flow.ts on a stand-in stream (an EventTarget with libp2p's
// writeBufferLength and status): waitForRoom returns at once with room, waits for 'drain', 'idle' or
// 'close' while over the cap, ends with an AbortError carrying the signal's reason, refuses a stream that is
// no longer open, and leaves no listener behind however it ends (a long transfer waits thousands of times).
// The real streams are exercised by the transport's tests (a reader that stops holds its sender back).

import { getEventListeners } from 'node:events';
import type { Stream } from '@libp2p/interface';
import { describe, expect, it } from 'vitest';
import { waitForRoom } from '../../src/p2p/stream-flow.ts';

class StandIn extends EventTarget {
  writeBufferLength = 0;
  status = 'open';
  listeners = 0;
  override addEventListener(...args: Parameters<EventTarget['addEventListener']>): void {
    this.listeners++;
    super.addEventListener(...args);
  }
  override removeEventListener(...args: Parameters<EventTarget['removeEventListener']>): void {
    this.listeners--;
    super.removeEventListener(...args);
  }
}

const asStream = (s: StandIn) => s as unknown as Stream;
const settled = async (p: Promise<unknown>) =>
  Promise.race([
    p.then(
      () => 'resolved',
      () => 'rejected',
    ),
    new Promise((r) => setTimeout(() => r('pending'), 20)),
  ]);

describe('waitForRoom', () => {
  it('returns at once while the queue is within the cap', async () => {
    const s = new StandIn();
    s.writeBufferLength = 100;
    await waitForRoom(asStream(s), 100, new AbortController().signal);
    expect(s.listeners).toBe(0);
  });

  it('waits over the cap until a drain brings the queue back within it', async () => {
    const s = new StandIn();
    s.writeBufferLength = 300;
    const ac = new AbortController();
    const waiting = waitForRoom(asStream(s), 100, ac.signal);
    expect(await settled(waiting)).toBe('pending');
    s.writeBufferLength = 200; // a drain that left too much queued: it waits on
    s.dispatchEvent(new Event('drain'));
    expect(await settled(waiting)).toBe('pending');
    s.writeBufferLength = 0;
    s.dispatchEvent(new Event('idle'));
    expect(await settled(waiting)).toBe('resolved');
    expect(s.listeners).toBe(0);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('ends with an AbortError whose cause is the reason, and takes its listeners along', async () => {
    const s = new StandIn();
    s.writeBufferLength = 300;
    const ac = new AbortController();
    const waiting = waitForRoom(asStream(s), 100, ac.signal);
    await settled(waiting);
    expect(s.listeners).toBe(3); // drain, idle and close
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
    const reason = new Error('the peer left');
    ac.abort(reason);
    const err = await waiting.catch((e: Error) => e);
    expect(err).toMatchObject({ name: 'AbortError', cause: reason });
    expect(s.listeners).toBe(0);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('refuses a stream that is closing or was reset, and one closed while it waited', async () => {
    const s = new StandIn();
    s.writeBufferLength = 300;
    s.status = 'closing';
    await expect(waitForRoom(asStream(s), 100, new AbortController().signal)).rejects.toThrow(
      'the stream is closing',
    );
    s.status = 'open';
    const waiting = waitForRoom(asStream(s), 100, new AbortController().signal);
    await settled(waiting);
    s.status = 'reset';
    s.writeBufferLength = 0;
    s.dispatchEvent(new Event('close'));
    await expect(waiting).rejects.toThrow('the stream is reset');
    expect(s.listeners).toBe(0);
  });
});
