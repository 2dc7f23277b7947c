// The yamux guard: a window update that meets an already-closed connection aborts its one stream instead of
// throwing out of a microtask (which ends the process); other errors still throw. Real YamuxStream objects.

import { YamuxStream } from '@chainsafe/libp2p-yamux/stream';
import { StreamStateError } from '@libp2p/interface';
import { defaultLogger } from '@libp2p/logger';
import { describe, expect, it } from 'vitest';
import { guardYamuxWindowUpdates } from '../../src/p2p/yamux-guard.ts';

function stream(sendFrame: () => boolean): YamuxStream {
  return new YamuxStream({
    id: '1',
    streamId: 1,
    direction: 'outbound',
    log: defaultLogger().forComponent('test:yamux'),
    sendFrame,
    getRTT: () => 1,
    state: 0,
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
