// Super-seeding (BitTorrent's "initial seeding"): a complete holder's upload link is what the whole swarm
// waits on until every chunk has left it once, so while some chunk has never been sent it declines a chunk
// it has just sent to another peer, and offers chunks nobody has had from it instead. The peer that got the
// first copy passes it on, and the seed sends each byte about once: the Kumar–Ross bound needs exactly
// that (S/u_seed). Pullers do not see each other's requests, so without this two pullers starting on the
// same rarest chunk both take it from the seed.
//
// Never a deadlock: a chunk is declined only within `windowMs` of the send that went to another peer (the
// receiver may have died since), only while the first pass lasts, and the send that failed counts as never
// made. Pure: the image server keeps one per image it holds whole and asks it about every chunk request.

export interface FirstPassInit {
  /** A chunk sent to another peer is declined to others for this long (ms). Default 10 s. */
  windowMs?: number;
  /** Chunks offered instead of a declined one. Default 8. */
  offerSize?: number;
  now?: () => number;
}

export class FirstPass {
  readonly #sentAt: Float64Array;
  readonly #sentTo: (string | undefined)[];
  readonly #windowMs: number;
  readonly #offerSize: number;
  readonly #now: () => number;
  /** Chunks never sent (or whose only send failed), offered from a rotating cursor so that two peers
   *  declined at once are offered different chunks. */
  #unsent: number;
  #cursor = 0;

  constructor(chunks: number, init: FirstPassInit = {}) {
    this.#sentAt = new Float64Array(chunks).fill(Number.NaN);
    this.#sentTo = new Array(chunks);
    this.#unsent = chunks;
    this.#windowMs = init.windowMs ?? 10_000;
    this.#offerSize = init.offerSize ?? 8;
    this.#now = init.now ?? Date.now;
  }

  /** Every chunk has left this holder once: no more declines. */
  get over(): boolean {
    return this.#unsent === 0;
  }

  /**
   * `peer` asks for chunk `index`: undefined to send it (it is then counted as sent to `peer`), or the
   * chunks to offer instead (never sent, up to `offerSize`) when it was just sent to another peer.
   */
  decide(index: number, peer: string): number[] | undefined {
    if (index < 0 || index >= this.#sentAt.length) return undefined;
    const at = this.#sentAt[index];
    const to = this.#sentTo[index];
    if (!this.over && !Number.isNaN(at) && to !== peer && this.#now() - at < this.#windowMs) {
      const offer = this.#offer();
      if (offer.length > 0) return offer;
    }
    if (Number.isNaN(at)) this.#unsent--;
    this.#sentAt[index] = this.#now();
    this.#sentTo[index] = peer;
    return undefined;
  }

  /** The send of `index` to `peer` did not finish: the chunk counts as never sent (when it was the last). */
  failed(index: number, peer: string): void {
    if (this.#sentTo[index] !== peer || Number.isNaN(this.#sentAt[index])) return;
    this.#sentAt[index] = Number.NaN;
    this.#sentTo[index] = undefined;
    this.#unsent++;
  }

  #offer(): number[] {
    const n = this.#sentAt.length;
    const out: number[] = [];
    for (let k = 0; k < n && out.length < this.#offerSize; k++) {
      const i = (this.#cursor + k) % n;
      if (Number.isNaN(this.#sentAt[i])) out.push(i);
    }
    if (out.length > 0) this.#cursor = (out[out.length - 1] + 1) % n;
    return out;
  }
}
