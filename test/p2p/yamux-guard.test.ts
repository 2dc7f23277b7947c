// The yamux guard: a window update that meets an already-closed connection aborts its one stream instead of
// throwing out of a microtask (which ends the process); other errors still throw. And window updates go out
// as Go's yamux sends them: once half the receive window is taken, not after every data frame. Real
// YamuxStream objects.

import { YamuxStream } from '@chainsafe/libp2p-yamux/stream';
import { StreamStateError } from '@libp2p/interface';
import { defaultLogger } from '@libp2p/logger';
import { describe, expect, it } from 'vitest';
import { guardYamuxWindowUpdates } from '../../src/p2p/yamux-guard.ts';

function stream(
  sendFrame: (header: { type: number; flag: number; length: number }) => boolean,
  state = 0,
): YamuxStream {
  return new YamuxStream({
    id: '1',
    streamId: 1,
    direction: 'outbound',
    log: defaultLogger().forComponent('test:yamux'),
    sendFrame,
    getRTT: () => 1,
    state,
  });
}

describe('guardYamuxWindowUpdates', () => {
  it('turns the opening window update on a closed connection into an abort of that stream', () => {
    const closed = () => {
      throw new StreamStateError('Cannot write to a stream that is closed');
    };
    expect(() => stream(closed).sendWindowUpdate()).toThrow(StreamStateError);
    guardYamuxWindowUpdates();
    const s = stream(closed);
    expect(() => s.sendWindowUpdate()).not.toThrow();
    expect(s.status).toBe('aborted');
  });

  it('still throws any other error', () => {
    guardYamuxWindowUpdates();
    const s = stream(() => {
      throw new TypeError('a bug');
    });
    expect(() => s.sendWindowUpdate()).toThrow(TypeError);
  });

  it('leaves a healthy stream alone', () => {
    guardYamuxWindowUpdates();
    let frames = 0;
    const s = stream(() => ++frames > 0);
    s.sendWindowUpdate();
    expect(frames).toBe(1);
    expect(s.status).toBe('open');
  });
});

describe('window updates', () => {
  const ESTABLISHED = 3;
  const WINDOW = 256 * 1024; // yamux's initial stream window
  // A data frame as the muxer hands it to the stream (the stream takes a plain buffer as well as a list).
  const data = (n: number) =>
    ({ header: { type: 0, flag: 0, streamID: 1, length: n }, data: new Uint8Array(n) }) as never;

  it('sends none for small messages until half the window is taken, then one for all of it', () => {
    guardYamuxWindowUpdates();
    const updates: number[] = [];
    const s = stream((h) => {
      if (h.type === 1) updates.push(h.length);
      return true;
    }, ESTABLISHED);
    s.addEventListener('message', () => {});
    for (let i = 0; i < 100; i++) s.handleData(data(100)); // 100 SWIM-sized messages
    expect(updates).toEqual([]);
    s.handleData(data(WINDOW / 2)); // past half the window
    expect(updates).toHaveLength(1);
    // It gives back at least all that was taken (more when yamux grows the window of a fast stream).
    expect(updates[0]).toBeGreaterThanOrEqual(100 * 100 + WINDOW / 2);
  });

  it('still acknowledges a new stream at once', () => {
    guardYamuxWindowUpdates();
    const flags: number[] = [];
    const s = stream((h) => flags.push(h.flag) > 0, 2 /* SYNReceived */);
    s.sendWindowUpdate();
    expect(flags).toEqual([2]); // ACK
  });
});
