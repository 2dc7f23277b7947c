// A holder's send slots: at most `max` chunks at once and `perPeer` to one peer; a waiter whose peer is at
// its cap lets those behind it for other peers pass; a slot freed goes to the first waiter that may take it;
// an abort while waiting leaves the queue; a release counts once.

import { describe, expect, it } from 'vitest';
import { SendSlots } from '../../../src/cluster/image-swarm/send-slots.ts';

const never = new AbortController().signal;
const tick = () => new Promise((r) => setImmediate(r));

describe('SendSlots', () => {
  it('holds the per-peer cap and lets other peers pass a capped one', async () => {
    const slots = new SendSlots({ max: 3, perPeer: 2 });
    const a1 = await slots.take('a', never);
    await slots.take('a', never);
    let a3: (() => void) | undefined;
    void slots.take('a', never).then((r) => {
      a3 = r;
    });
    const b1 = await slots.take('b', never); // a is at its cap: b goes first
    expect(slots.sending('a')).toBe(2);
    expect(slots.sending()).toBe(3);
    let b2 = false;
    void slots.take('b', never).then(() => {
      b2 = true;
    });
    await tick();
    expect(a3).toBeUndefined();
    expect(slots.waiting).toBe(2);
    a1(); // a's slot: the first waiter that may take it is a's own
    await tick();
    expect(a3).toBeDefined();
    expect(b2).toBe(false); // the slots are full (3)
    b1();
    await tick();
    expect(b2).toBe(true);
    expect(slots.waiting).toBe(0);
  });

  it('never hands out more than max, and a release counts once', async () => {
    const slots = new SendSlots({ max: 2, perPeer: 2 });
    const r = await slots.take('a', never);
    await slots.take('b', never);
    const waiting = [slots.take('c', never), slots.take('d', never)];
    r();
    r(); // twice: one slot freed, not two
    await tick();
    expect(slots.sending()).toBe(2);
    expect(slots.waiting).toBe(1);
    void waiting;
  });

  it('drops a waiter whose signal aborts', async () => {
    const slots = new SendSlots({ max: 1, perPeer: 1 });
    const held = await slots.take('a', never);
    const ac = new AbortController();
    const waiting = slots.take('b', ac.signal);
    ac.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    expect(slots.waiting).toBe(0);
    held();
    expect(slots.sending()).toBe(0);
  });
});
