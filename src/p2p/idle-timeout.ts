// A timeout for the waits of a whole transfer as one AbortSignal: `arm()` before a wait (a read, a wait for
// room in the send queue), `pause()` after it; the signal aborts with a TimeoutError when one wait lasts
// `ms`. Made once per request. Why not `AbortSignal.any([signal, AbortSignal.timeout(ms)])` at every wait:
// that is a timer and two signals per frame (every 256 KiB of an image chunk) with their listeners and
// garbage — a few per cent of a pulling host's CPU, on hosts whose CPU is what a swarm pull runs out of
// first. Here a wait costs one timer (re-armed in place when it is still pending).

export class IdleTimeout {
  /** Aborts when `parent` does, or when a wait lasts `ms`. */
  readonly signal: AbortSignal;
  readonly #ac = new AbortController();
  readonly #ms: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(ms: number, parent?: AbortSignal) {
    this.#ms = ms;
    this.signal = parent ? AbortSignal.any([parent, this.#ac.signal]) : this.#ac.signal;
  }

  /** A wait begins: `ms` from now. */
  arm(): void {
    if (this.#ac.signal.aborted) return;
    if (this.#timer) {
      this.#timer.refresh();
      return;
    }
    this.#timer = setTimeout(
      () => this.#ac.abort(new DOMException(`waited ${this.#ms} ms`, 'TimeoutError')),
      this.#ms,
    );
    this.#timer.unref();
  }

  /** The wait is over: nothing counts until the next `arm()`. */
  pause(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
