// Which chunk requests a holder sends now: at most `max` chunks at once (each is held in memory while it
// goes) and at most `perPeer` to any one peer; the others wait, first come first served among those whose
// peer is under its cap. Why per peer: a puller's download link is shared by every holder sending to it, one
// TCP flow per chunk, so each holder's share of it is its number of flows. A seed that sent four chunks at
// once to three pullers (about 1.3 each) while every puller sent two to each other got a quarter of each
// puller's link instead of a third, and left a quarter of its own link, the swarm's bottleneck, unused.
// With the same per-peer cap on every holder, the seed gets its share at each puller. And a few chunks at
// full speed finish, and can be passed on, sooner than many at a fraction of it (BitTorrent's upload slots).

export interface SendSlotsInit {
  /** Chunks sent at once in all. Default 12. */
  max?: number;
  /** Chunks sent at once to one peer. Default 2. */
  perPeer?: number;
}

interface Waiter {
  peer: string;
  /** Hands the waiter its slot, counted already (so no later take() can pass it meanwhile). */
  go: (release: () => void) => void;
}

export class SendSlots {
  readonly #max: number;
  readonly #perPeer: number;
  #sending = 0;
  readonly #byPeer = new Map<string, number>();
  readonly #waiting: Waiter[] = [];

  constructor({ max = 12, perPeer = 2 }: SendSlotsInit = {}) {
    if (max < 1 || perPeer < 1) throw new RangeError(`send slots: max ${max}, perPeer ${perPeer}`);
    this.#max = max;
    this.#perPeer = perPeer;
  }

  /** Chunks being sent now (to `peer`, or in all). */
  sending(peer?: string): number {
    return peer === undefined ? this.#sending : (this.#byPeer.get(peer) ?? 0);
  }

  /** Chunk requests waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Waits for a slot to send a chunk to `peer` and returns its release (call it once, when the send
   *  ends however it ends). Rejects with the signal's reason if it aborts first. */
  async take(peer: string, signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted();
    if (this.#free(peer)) return this.#grant(peer);
    return new Promise<() => void>((resolve, reject) => {
      const waiter: Waiter = {
        peer,
        go: (release) => {
          signal.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      const onAbort = () => {
        this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
        reject(signal.reason);
      };
      this.#waiting.push(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  #free(peer: string): boolean {
    return this.#sending < this.#max && (this.#byPeer.get(peer) ?? 0) < this.#perPeer;
  }

  #grant(peer: string): () => void {
    this.#sending++;
    this.#byPeer.set(peer, (this.#byPeer.get(peer) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#sending--;
      const left = (this.#byPeer.get(peer) ?? 1) - 1;
      if (left === 0) this.#byPeer.delete(peer);
      else this.#byPeer.set(peer, left);
      this.#wakeNext();
    };
  }

  /** Hands slots to the first waiters whose peers are under their caps, as far as the slots allow. */
  #wakeNext(): void {
    for (let i = 0; i < this.#waiting.length && this.#sending < this.#max; ) {
      const w = this.#waiting[i];
      if (!this.#free(w.peer)) {
        i++;
        continue;
      }
      this.#waiting.splice(i, 1);
      w.go(this.#grant(w.peer));
    }
  }
}
