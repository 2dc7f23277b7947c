// A Clock on virtual time for discrete-event runs: timers wait in a binary heap and `runUntil(t)` fires
// them in time order (ties in the order they were set), moving `now()` to each one's time. A thousand
// hosts' membership runs for minutes of virtual time in seconds (bench/membership-sim.ts); nothing here
// waits for real time.

import type { Clock, TimerHandle } from './clock.ts';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class VirtualClock implements Clock {
  #now = 0;
  #seq = 0;
  readonly #heap: Timer[] = [];
  /** Timers fired so far. */
  fired = 0;

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t: Timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#push(t);
    return {
      cancel: () => {
        t.cancelled = true;
      },
    };
  }

  /** Fires every timer due up to `t` (including those they set), then sets now() to `t`. */
  runUntil(t: number): void {
    while (this.#heap.length > 0 && this.#heap[0].at <= t) {
      const next = this.#pop();
      if (next.cancelled) continue;
      this.#now = next.at;
      this.fired++;
      next.fn();
    }
    this.#now = Math.max(this.#now, t);
  }

  #less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(t: Timer): void {
    const h = this.#heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  #pop(): Timer {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l], h[m])) m = l;
        if (r < h.length && this.#less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
