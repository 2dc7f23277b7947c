// How long anti-entropy waits between rounds. A round is there to repair what a push missed; where
// nothing changes there is nothing to repair, yet on an idle 3-host cluster the rounds (a new stream to
// each peer every 5 s, each way) were about a quarter of the CPU the p2p layer used. So: a round every
// `base` ms while anything happens; after a round that changed nothing (no row sent or taken, no failed
// push or sync, the store's version as it was) the wait doubles, up to `max`; any other round, and any
// write on this host (its pushes may fail, and the round after them must come soon), brings it back to
// `base` at once. A peer that connects is synced with at once whatever the pace (replicator.ts).

export class SyncPace {
  readonly base: number;
  readonly max: number;
  #wait: number;

  constructor(base: number, max: number) {
    this.base = base;
    this.max = Math.max(base, max);
    this.#wait = base;
  }

  /** How long to wait before the next round. */
  get wait(): number {
    return this.#wait;
  }

  /** After a round: a quiet one slows the pace, any other puts it back to `base`. */
  roundEnded(quiet: boolean): void {
    this.#wait = quiet ? Math.min(this.max, this.#wait * 2) : this.base;
  }

  /** Something may need repair soon: back to `base`. True when the wait was longer (reschedule). */
  wake(): boolean {
    const slowed = this.#wait > this.base;
    this.#wait = this.base;
    return slowed;
  }
}
