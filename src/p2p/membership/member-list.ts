// The members one host knows, with the state it gives each (alive, suspect, dead), the signed alive
// record each state stands on, and the order it probes them in: round-robin over a shuffled list, a new
// member inserted at a random place (SWIM's bound: every live member is probed by each host once per
// round of N periods, and by someone within a few periods). Dead members stay listed, unprobed, so an
// old record replayed later cannot bring them back: only the member's own higher incarnation does.

import type { TimerHandle } from './clock.ts';
import type { AliveUpdate, MemberState, SyncEntry } from './messages.ts';

export interface Suspicion {
  /** Local time the first suspicion was heard. */
  startedAt: number;
  /** Distinct members that suspect it at this incarnation (this host included after its own probe failed). */
  confirmers: Set<string>;
  timer?: TimerHandle;
}

export interface Member {
  peer: string;
  incarnation: number;
  addrs: string[];
  /** The member's own signed record of `incarnation` (passed on in syncs). */
  record: AliveUpdate;
  state: MemberState;
  /** Local time of the last state change. */
  since: number;
  suspicion?: Suspicion;
  /** Local time of the last message from it, or of its ack relayed by another member. */
  heardAt?: number;
}

export class MemberList {
  readonly #members = new Map<string, Member>();
  /** Every member's peer id, for sampling by random index. */
  #peers: string[] = [];
  readonly #random: () => number;
  #order: string[] = [];
  #next = 0;

  constructor(random: () => number) {
    this.#random = random;
  }

  get(peer: string): Member | undefined {
    return this.#members.get(peer);
  }

  all(): IterableIterator<Member> {
    return this.#members.values();
  }

  get size(): number {
    return this.#members.size;
  }

  /** Members not dead (the N of the protocol's formulas, without this host). */
  get live(): number {
    let n = 0;
    for (const m of this.#members.values()) if (m.state !== 'dead') n++;
    return n;
  }

  add(m: Member): void {
    this.#members.set(m.peer, m);
    this.#peers.push(m.peer);
    this.#order.splice(Math.floor(this.#random() * (this.#order.length + 1)), 0, m.peer);
  }

  /** A member back from dead goes into the probe order again. */
  revived(peer: string): void {
    if (!this.#order.includes(peer))
      this.#order.splice(Math.floor(this.#random() * (this.#order.length + 1)), 0, peer);
  }

  delete(peer: string): void {
    if (!this.#members.delete(peer)) return;
    this.#peers = this.#peers.filter((p) => p !== peer);
  }

  /** The dead member seen dead longest ago (evicted first when the list is full). */
  /** The full state for a sync: `own` (this host's alive record) first, then every member as held, at
   *  most `max` entries. */
  syncEntries(own: AliveUpdate, max: number): SyncEntry[] {
    const out: SyncEntry[] = [{ a: own, st: 'alive' }];
    for (const m of this.all()) {
      if (out.length >= max) break;
      out.push({ a: m.record, st: m.state });
    }
    return out;
  }

  oldestDead(): Member | undefined {
    let oldest: Member | undefined;
    for (const m of this.#members.values())
      if (m.state === 'dead' && (oldest === undefined || m.since < oldest.since)) oldest = m;
    return oldest;
  }

  /** The next member to probe (alive or suspect), reshuffling at the end of each round. */
  nextTarget(): Member | undefined {
    for (let tries = 0; tries <= this.#order.length; tries++) {
      if (this.#next >= this.#order.length) {
        this.#order = [...this.#members.values()].filter((m) => m.state !== 'dead').map((m) => m.peer);
        shuffle(this.#order, this.#random);
        this.#next = 0;
        if (this.#order.length === 0) return undefined;
      }
      const m = this.#members.get(this.#order[this.#next++]);
      if (m && m.state !== 'dead') return m;
    }
    return undefined;
  }

  /** Up to `n` random members in `states`, none of them in `except`: random picks first (cheap at
   *  thousands of members), a scan of everyone when those keep missing. */
  sample(n: number, states: readonly string[], except: readonly string[] = []): Member[] {
    const out: Member[] = [];
    const fits = (m: Member | undefined): m is Member =>
      m !== undefined && states.includes(m.state) && !except.includes(m.peer) && !out.includes(m);
    for (let tries = 0; out.length < n && tries < 4 * n + 8 && this.#peers.length > 0; tries++) {
      const m = this.#members.get(this.#peers[Math.floor(this.#random() * this.#peers.length)]);
      if (fits(m)) out.push(m);
    }
    if (out.length < n) {
      const pool = [...this.#members.values()].filter(fits);
      while (out.length < n && pool.length > 0) {
        const i = Math.floor(this.#random() * pool.length);
        out.push(pool[i]);
        pool[i] = pool[pool.length - 1];
        pool.pop();
      }
    }
    return out;
  }
}

function shuffle<T>(a: T[], random: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
}
