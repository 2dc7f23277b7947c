// Which chunk of an image to ask which holder for next: the pure decision of a swarm pull, with no I/O, so
// it can be tested exhaustively. Rarest first (the chunk the fewest holders have, as BitTorrent does, so
// rare chunks spread before the holders that have them leave), ties broken by one random order fixed for the
// pull (so pullers of one image start on different chunks and can trade sooner); at most `maxPerPeer`
// requests in flight per holder. A holder that sends a corrupt or truncated chunk is counted against; after
// `maxStrikes` it is dropped for the rest of the pull and what it had in flight goes back to the queue; the
// chunk it spoiled is asked of another holder first (the spoiler only when no other has it). A holder that
// dies costs only its in-flight chunks. Endgame: once every chunk still missing is in flight, an idle holder
// may duplicate a request already out (at most `endgameCopies` copies of one chunk), so the pull's end does
// not wait for the slowest holder; the first copy that arrives wins and the others are cancelled. A seed
// in its first pass (first-pass.ts) may decline a chunk and offer others: the declined chunk is not asked
// of it again until the caller forgets declines (after its next look at the bitmaps), the offered ones
// are asked of it first.

export interface ChunkSchedulerInit {
  /** Number of chunks in the image. */
  chunks: number;
  /** Indexes of the chunks still missing here (verified chunks of a resumed pull are not). */
  missing: Iterable<number>;
  /** Requests in flight to one holder at once. Default 4. */
  maxPerPeer?: number;
  /** Corrupt or truncated chunks a holder may send before it is dropped. Default 3. */
  maxStrikes?: number;
  /** Requests out for one chunk at most, in the endgame. Default 2. */
  endgameCopies?: number;
  /** [0, 1) random numbers (Math.random by default; tests pass a seeded one). */
  random?: () => number;
}

interface PeerState {
  bitmap: Uint8Array;
  /** It has every chunk (a complete holder). */
  full: boolean;
  inFlight: Set<number>;
  strikes: number;
  /** Chunks it declined (a seed's first pass): asked of others meanwhile. */
  declined: Set<number>;
  /** Chunks it offered instead: asked of it first. */
  offer: number[];
}

/** What a failed request means for the holder that served it: `corrupt`/`truncated` count against it;
 *  `missing` (it said it has not got the chunk after all) makes it the last one asked for that chunk;
 *  `none` (it could not be reached, it was busy) just frees the chunk. */
export type ChunkFault = 'corrupt' | 'truncated' | 'missing' | 'none';

export class ChunkScheduler {
  readonly chunks: number;
  readonly #maxPerPeer: number;
  readonly #maxStrikes: number;
  readonly #endgameCopies: number;
  /** Chunks missing here, in the pull's random order. */
  readonly #order: number[];
  readonly #missing = new Set<number>();
  /** How many holders (in the pull) have each chunk. */
  readonly #availability: Uint16Array;
  readonly #inFlight = new Map<number, Set<string>>();
  readonly #peers = new Map<string, PeerState>();
  /** Holders that spoiled a chunk: asked for it again only when no other holder has it. */
  readonly #spoiledBy = new Map<number, Set<string>>();
  readonly #dropped = new Set<string>();
  /** How many holders in the pull are complete. */
  #full = 0;

  constructor(init: ChunkSchedulerInit) {
    if (!Number.isInteger(init.chunks) || init.chunks < 0) throw new RangeError(`chunks: ${init.chunks}`);
    this.chunks = init.chunks;
    this.#maxPerPeer = init.maxPerPeer ?? 4;
    this.#maxStrikes = init.maxStrikes ?? 3;
    this.#endgameCopies = init.endgameCopies ?? 2;
    if (this.#maxPerPeer < 1) throw new RangeError(`maxPerPeer must be at least 1, got ${this.#maxPerPeer}`);
    this.#availability = new Uint16Array(init.chunks);
    for (const i of init.missing) {
      if (!Number.isInteger(i) || i < 0 || i >= init.chunks) throw new RangeError(`missing chunk ${i}`);
      this.#missing.add(i);
    }
    this.#order = shuffle([...this.#missing], init.random ?? Math.random);
  }

  /** Chunks not yet verified here. */
  get remaining(): number {
    return this.#missing.size;
  }

  get complete(): boolean {
    return this.#missing.size === 0;
  }

  /** Holders taking part (not dropped). */
  get peers(): string[] {
    return [...this.#peers.keys()];
  }

  /** Holders taking part that do not have every chunk. */
  get partialPeers(): number {
    return this.#peers.size - this.#full;
  }

  /** Whether chunk `index` is still missing here (not yet reported done). */
  isMissing(index: number): boolean {
    return this.#missing.has(index);
  }

  /** Whether `peer` was dropped for spoiling chunks (it is not taken back in this pull). */
  isDropped(peer: string): boolean {
    return this.#dropped.has(peer);
  }

  has(peer: string): boolean {
    return this.#peers.has(peer);
  }

  inFlight(peer: string): number {
    return this.#peers.get(peer)?.inFlight.size ?? 0;
  }

  /** Whether `peer` has every chunk (a complete holder: its bitmap need not be read again). */
  hasAll(peer: string): boolean {
    return this.#peers.get(peer)?.full === true;
  }

  /** How many holders in the pull have chunk `index`. */
  availability(index: number): number {
    return this.#availability[index];
  }

  /** Adds a holder, or replaces its bitmap (a partial holder's grows). A dropped holder is ignored. */
  setPeer(peer: string, bitmap: Uint8Array): boolean {
    if (this.#dropped.has(peer)) return false;
    const state = this.#peers.get(peer);
    if (state) this.#count(state.bitmap, -1);
    const copy = new Uint8Array(Math.ceil(this.chunks / 8));
    copy.set(bitmap.subarray(0, copy.length));
    this.#count(copy, +1);
    let full = true;
    for (let i = 0; i < this.chunks && full; i++) full = hasBit(copy, i);
    if (state) {
      this.#full += Number(full) - Number(state.full);
      state.bitmap = copy;
      state.full = full;
    } else {
      this.#full += Number(full);
      this.#peers.set(peer, {
        bitmap: copy,
        full,
        inFlight: new Set(),
        strikes: 0,
        declined: new Set(),
        offer: [],
      });
    }
    return true;
  }

  /** A holder left (died, unreachable): its in-flight chunks are free again. Returns them. */
  removePeer(peer: string): number[] {
    const state = this.#peers.get(peer);
    if (!state) return [];
    this.#count(state.bitmap, -1);
    const freed = [...state.inFlight];
    for (const i of freed) this.#release(i, peer);
    this.#full -= Number(state.full);
    this.#peers.delete(peer);
    return freed;
  }

  /** The next chunk to ask `peer` for (marked in flight to it), or undefined when it has nothing useful or
   *  has `maxPerPeer` requests out. */
  next(peer: string): number | undefined {
    const state = this.#peers.get(peer);
    if (!state || state.inFlight.size >= this.#maxPerPeer) return undefined;
    for (let i = state.offer.shift(); i !== undefined; i = state.offer.shift()) {
      if (this.#missing.has(i) && !this.#inFlight.has(i) && this.#mayTake(i, peer, state)) {
        this.#take(i, peer, state);
        return i;
      }
    }
    let best = -1;
    let bestAvail = Number.POSITIVE_INFINITY;
    let pending = 0;
    for (const i of this.#order) {
      if (!this.#missing.has(i)) continue;
      if (this.#inFlight.has(i)) continue;
      pending++;
      if (!this.#mayTake(i, peer, state)) continue;
      const avail = this.#availability[i];
      if (avail < bestAvail) {
        best = i;
        bestAvail = avail;
        if (avail <= 1) break; // nobody else has it: cannot be rarer
      }
    }
    if (best < 0 && pending === 0) best = this.#endgamePick(peer, state);
    if (best < 0) return undefined;
    this.#take(best, peer, state);
    return best;
  }

  /** Chunk `index` from `peer` was verified and written. Returns the other holders it is still in flight
   *  to (endgame copies), whose requests the caller cancels. */
  done(index: number, peer: string): string[] {
    this.#missing.delete(index);
    this.#spoiledBy.delete(index);
    const others = [...(this.#inFlight.get(index) ?? [])].filter((p) => p !== peer);
    for (const p of [peer, ...others]) this.#release(index, p);
    return others;
  }

  /**
   * A request for `index` to `peer` ended without a good chunk (see ChunkFault). At `maxStrikes` the holder
   * is dropped (its other chunks are freed) and `dropped` is true.
   */
  failed(index: number, peer: string, fault: ChunkFault): { dropped: boolean } {
    this.#release(index, peer);
    if (fault === 'none') return { dropped: false };
    const spoilers = this.#spoiledBy.get(index) ?? new Set<string>();
    this.#spoiledBy.set(index, spoilers);
    spoilers.add(peer);
    if (fault === 'missing') return { dropped: false };
    const state = this.#peers.get(peer);
    if (!state) return { dropped: this.#dropped.has(peer) };
    state.strikes++;
    if (state.strikes < this.#maxStrikes) return { dropped: false };
    this.removePeer(peer);
    this.#dropped.add(peer);
    return { dropped: true };
  }

  /** `peer`, a seed in its first pass, declined chunk `index` and offers `offer` instead. */
  declined(index: number, peer: string, offer: readonly number[]): void {
    this.#release(index, peer);
    const state = this.#peers.get(peer);
    if (!state) return;
    state.declined.add(index);
    state.offer = offer.filter((i) => Number.isInteger(i) && i >= 0 && i < this.chunks);
  }

  /** Declined chunks may be asked of their seeds again (their first copies have had time to spread). */
  forgetDeclined(): void {
    for (const state of this.#peers.values()) state.declined.clear();
  }

  /** Strikes counted against `peer` in this pull. */
  strikes(peer: string): number {
    return this.#peers.get(peer)?.strikes ?? (this.#dropped.has(peer) ? this.#maxStrikes : 0);
  }

  /** The chunks still missing that no holder in the pull has (the pull cannot finish without new holders). */
  unavailable(): number[] {
    return [...this.#missing].filter((i) => this.#availability[i] === 0);
  }

  /** Endgame: every missing chunk is in flight somewhere; duplicate the one with the fewest copies out
   *  that this peer has and is not already asked for. */
  #endgamePick(peer: string, state: PeerState): number {
    let best = -1;
    let bestCopies = this.#endgameCopies;
    for (const i of this.#order) {
      const holders = this.#inFlight.get(i);
      if (!this.#missing.has(i) || !holders || holders.has(peer)) continue;
      if (!this.#mayTake(i, peer, state)) continue;
      if (holders.size < bestCopies) {
        best = i;
        bestCopies = holders.size;
      }
    }
    return best;
  }

  /** Whether `peer` may be asked for chunk `index`: it has it, has not just declined it, and did not spoil
   *  it while another holder has it. */
  #mayTake(index: number, peer: string, state: PeerState): boolean {
    return hasBit(state.bitmap, index) && !state.declined.has(index) && this.#mayAsk(index, peer);
  }

  /** A holder that spoiled chunk `index` is asked for it again only when no other holder in the pull has it. */
  #mayAsk(index: number, peer: string): boolean {
    const spoilers = this.#spoiledBy.get(index);
    if (!spoilers?.has(peer)) return true;
    for (const [other, s] of this.#peers) {
      if (other !== peer && !spoilers.has(other) && hasBit(s.bitmap, index)) return false;
    }
    return true;
  }

  #take(index: number, peer: string, state: PeerState): void {
    const holders = this.#inFlight.get(index) ?? new Set<string>();
    this.#inFlight.set(index, holders);
    holders.add(peer);
    state.inFlight.add(index);
  }

  #release(index: number, peer: string): void {
    const holders = this.#inFlight.get(index);
    holders?.delete(peer);
    if (holders?.size === 0) this.#inFlight.delete(index);
    this.#peers.get(peer)?.inFlight.delete(index);
  }

  #count(bitmap: Uint8Array, delta: 1 | -1): void {
    for (let i = 0; i < this.chunks; i++) if (hasBit(bitmap, i)) this.#availability[i] += delta;
  }
}

/** Whether bit `index` is set (the store's have bitmap: bit i&7 of byte i>>3, least significant first). */
export function hasBit(bitmap: Uint8Array, index: number): boolean {
  return ((bitmap[index >> 3] ?? 0) & (1 << (index & 7))) !== 0;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}
