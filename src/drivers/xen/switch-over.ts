// The switch-over of a live Xen move (live-migration.ts), and who may end `xl migrate` when. It runs
// while xenosd holds xl's stream at libxl's END record, the guest suspended: the source's disk backend is
// held, the disk layer sent, the destination says `received`, and the caller's commit runs. Before the
// commit xl must live (it resumes the source when its stream ends); after it, the guest belongs to the
// destination, so xl is killed as soon as the destination says it could not run the guest, the stream to
// it is lost, or the caller gives up. It is also the tunnel's end gate: the destination's end of the
// stream, or the loss of the stream, reaches xl only once the switch-over settled, and after the commit
// only once the destination answered (xl reads an end before that answer as a failure and would resume
// the source) or, on a failure, once xl is gone.

/** The destination's last word: whether it runs the guest. */
export interface Started {
  ok: boolean;
  error?: string;
}

/** What the switch-over does, in order. */
export interface SwitchOverSteps {
  /** The suspended source's disk backend flushed and stopped. */
  hold(): Promise<void>;
  /** The disk layer sent and the destination's `received`; `lost` aborts when the stream to xl is lost
   *  (xl cannot finish the move then: waiting on would only hold the guest paused). */
  transfer(lost: AbortSignal): Promise<void>;
  /** The commit point (absent: nothing to commit). */
  commit?(): Promise<void>;
  /** The destination's `started` (asked for once). */
  started(): Promise<Started>;
}

export class SwitchOver {
  #held = false;
  #committed = false;
  readonly #steps: SwitchOverSteps;
  /** Aborts to kill xl: only after the commit. */
  readonly #killXl = new AbortController();
  #running: Promise<void> | undefined;
  /** The switch-over's own failure: why xl's stream broke. */
  #failed: Error | undefined;
  /** The stream between xl and the destination failed (aborted with why). */
  readonly #lost = new AbortController();
  #started: Promise<Started> | undefined;
  #xl: Promise<void> | undefined;
  #xlGone = false;

  constructor(steps: SwitchOverSteps) {
    this.#steps = steps;
  }

  /** The source's disk backend was held (it must run again if the move is not committed). */
  get held(): boolean {
    return this.#held;
  }

  /** The move was committed: the guest belongs to the destination. */
  get committed(): boolean {
    return this.#committed;
  }

  /** Ends xl when aborted (pass it to `xl migrate`). */
  get killXl(): AbortSignal {
    return this.#killXl.signal;
  }

  /** `xl migrate` is running as `xl`. */
  xlRunning(xl: Promise<void>): void {
    this.#xl = xl;
    xl.then(
      () => {},
      () => {},
    ).finally(() => {
      this.#xlGone = true;
    });
  }

  /** Runs the switch-over (at libxl's END record); rejects when it fails, before or after the commit. */
  run(): Promise<void> {
    this.#running = this.#run();
    return this.#running.catch((err: Error) => {
      this.#failed = err;
      throw err;
    });
  }

  async #run(): Promise<void> {
    await this.#steps.hold();
    this.#held = true;
    // No commit once xl cannot finish the move: it resumes the source.
    const lost = this.#lost.signal;
    lost.throwIfAborted();
    await this.#steps.transfer(lost);
    lost.throwIfAborted();
    if (this.#xlGone) throw new Error('xl ended before the commit');
    await this.#steps.commit?.();
    this.#committed = true;
    this.#started = this.#steps.started();
    this.#started.then(
      (m) =>
        m.ok || this.#kill(new Error(`the destination could not run it: ${m.error ?? 'no reason given'}`)),
      (err: Error) => this.#kill(err),
    );
    if (lost.aborted) this.#kill(lost.reason as Error);
  }

  /** The caller gave up: after the commit xl goes; before it `breakStream` runs (xl then resumes the
   *  source itself). */
  giveUp(why: Error, breakStream: () => void): void {
    if (this.#committed) this.#kill(why);
    else breakStream();
  }

  /** Resolves when the destination's end (or the loss of the connection) may reach xl. */
  async beforeEnd(): Promise<void> {
    await this.settled();
    if (!this.#started) return;
    const ok = await this.#started.then(
      (m) => m.ok,
      () => false,
    );
    if (!ok) await this.#xl?.catch(() => {});
  }

  /** The stream between xl and the destination failed with `err`. */
  broken(err: Error): void {
    this.#lost.abort(err);
    if (this.#committed) this.#kill(err);
  }

  /** Resolves once a switch-over under way has settled (committed or not). */
  async settled(): Promise<void> {
    await this.#running?.catch(() => {});
  }

  /** Why `xl migrate` failed with `err`: the kill's reason, or the switch-over's failure (xl says only
   *  that its stream broke). */
  explain(err: Error): Error {
    if (this.#killXl.signal.aborted) return this.#killXl.signal.reason as Error;
    return this.#failed ? new Error(`${this.#failed.message} (${err.message})`, { cause: err }) : err;
  }

  /** The destination's answer once xl is done. */
  report(): Promise<Started> {
    return this.#started ?? this.#steps.started();
  }

  #kill(err: Error): void {
    this.#killXl.abort(err);
  }
}
