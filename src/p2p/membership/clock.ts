// The time the membership protocol runs on: a monotonic `now()` and one-shot timers. The protocol takes
// it as a component so the same code runs on real time in xenosd and on virtual time in the
// discrete-event simulation (bench/membership-sim.ts), where a thousand hosts run in one process.

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds on a monotonic clock (only differences matter). */
  now(): number;
  /** Runs `fn` once after `ms`; the handle cancels it. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

/** Real time: performance.now() and Node timers (unref'd: membership never keeps a process alive). */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};
