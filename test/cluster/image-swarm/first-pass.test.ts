// A seed's first pass (src/cluster/image-swarm/first-pass.ts): while some chunk has never left it, a chunk
// just sent to another peer is declined and unsent chunks are offered, different ones to peers declined one
// after the other; the same peer asking again, a send that failed, the window running out and the end of
// the pass all mean the chunk is sent.

import { describe, expect, it } from 'vitest';
import { FirstPass } from '../../../src/cluster/image-swarm/first-pass.ts';

function clocked(chunks: number, windowMs = 1000, offerSize = 3) {
  const clock = { now: 0 };
  return { clock, pass: new FirstPass(chunks, { windowMs, offerSize, now: () => clock.now }) };
}

describe('FirstPass', () => {
  it('declines a chunk just sent to another peer and offers unsent ones, a different few to each', () => {
    const { pass } = clocked(10);
    expect(pass.decide(0, 'a')).toBeUndefined();
    expect(pass.decide(1, 'a')).toBeUndefined();
    const toB = pass.decide(0, 'b');
    expect(toB).toEqual([2, 3, 4]);
    const toC = pass.decide(1, 'c');
    expect(toC).toEqual([5, 6, 7]);
    // An offered chunk taken is sent and no longer offered.
    expect(pass.decide(2, 'b')).toBeUndefined();
    expect(pass.decide(0, 'c')).toEqual([8, 9, 3]);
  });

  it('sends again to the same peer (its first copy failed on its side)', () => {
    const { pass } = clocked(4);
    expect(pass.decide(0, 'a')).toBeUndefined();
    expect(pass.decide(0, 'a')).toBeUndefined();
  });

  it('counts a failed send as never made', () => {
    const { pass } = clocked(4);
    pass.decide(0, 'a');
    pass.failed(0, 'b'); // not b's send: changes nothing
    expect(pass.decide(0, 'c')).toBeDefined();
    pass.failed(0, 'a');
    expect(pass.decide(0, 'c')).toBeUndefined();
    expect(pass.decide(0, 'd')).toBeDefined();
  });

  it('sends a declined chunk once the window has passed (its first receiver may be gone)', () => {
    const { clock, pass } = clocked(4, 1000);
    pass.decide(0, 'a');
    clock.now = 999;
    expect(pass.decide(0, 'b')).toBeDefined();
    clock.now = 1000;
    expect(pass.decide(0, 'b')).toBeUndefined();
  });

  it('declines nothing once every chunk has left once', () => {
    const { pass } = clocked(3);
    for (const i of [0, 1, 2]) expect(pass.decide(i, 'a')).toBeUndefined();
    expect(pass.over).toBe(true);
    for (const i of [0, 1, 2]) expect(pass.decide(i, 'b')).toBeUndefined();
    // A failed send reopens it: that chunk has not really left.
    pass.failed(2, 'b');
    expect(pass.over).toBe(false);
    expect(pass.decide(0, 'c')).toEqual([2]);
  });

  it('ignores indexes outside the image', () => {
    const { pass } = clocked(2);
    expect(pass.decide(5, 'a')).toBeUndefined();
    expect(pass.decide(-1, 'a')).toBeUndefined();
    expect(pass.over).toBe(false);
  });
});
