// The updates a member still has to spread, piggybacked on its pings, acks, ping-reqs and gossip: each
// goes out a limited number of times (λ·⌈log10(N+1)⌉, see timing.ts), the least-sent first, as many as
// fit a message's byte budget. A newer update about a member replaces the queued ones it overrides (an
// alive at a higher incarnation drops older alives and suspicions; a suspicion drops the alive it
// contradicts), so the queue holds at most one alive per member and one suspicion per suspector.
// Entries are kept in buckets by how often they were sent, so taking a few from thousands (a host
// joining a large cluster queues one alive per member) costs what is taken, not a sort of the queue.

import { type Update, updateBytes } from './messages.ts';

interface Queued {
  key: string;
  u: Update;
  bytes: number;
  sent: number;
}

export class Broadcasts {
  /** buckets[n]: the entries sent n times, in the order they were queued. */
  readonly #buckets: Map<string, Queued>[] = [];
  readonly #byKey = new Map<string, Queued>();
  /** Keys queued per member the update is about. */
  readonly #byMember = new Map<string, Set<string>>();

  get size(): number {
    return this.#byKey.size;
  }

  add(u: Update): void {
    for (const key of this.#byMember.get(u.p) ?? []) {
      const q = this.#byKey.get(key)!;
      const overridden =
        u.k === 'alive'
          ? q.u.i < u.i || (q.u.k === 'alive' && q.u.i <= u.i)
          : q.u.k === 'alive'
            ? q.u.i <= u.i
            : q.u.i < u.i;
      if (overridden) this.#remove(q);
    }
    const key = u.k === 'alive' ? `a ${u.p}` : `s ${u.p} ${u.f}`;
    const old = this.#byKey.get(key);
    if (old) this.#remove(old);
    const q: Queued = { key, u, bytes: updateBytes(u), sent: 0 };
    this.#byKey.set(key, q);
    this.#bucket(0).set(key, q);
    const keys = this.#byMember.get(u.p) ?? new Set<string>();
    this.#byMember.set(u.p, keys);
    keys.add(key);
  }

  /** Up to `budget` bytes (and `max` updates), least-sent first; each taken one counts as sent once
   *  more and leaves the queue after `limit` sends. */
  take(budget: number, limit: number, max = Number.POSITIVE_INFINITY): Update[] {
    const taken: Queued[] = [];
    let used = 0;
    for (let n = 0; n < this.#buckets.length && taken.length < max && used < budget; n++) {
      for (const q of this.#buckets[n]?.values() ?? []) {
        if (taken.length >= max || used >= budget) break;
        if (used + q.bytes > budget) continue;
        used += q.bytes;
        taken.push(q);
      }
    }
    for (const q of taken) {
      this.#buckets[q.sent].delete(q.key);
      if (++q.sent >= limit) this.#remove(q, false);
      else this.#bucket(q.sent).set(q.key, q);
    }
    return taken.map((q) => q.u);
  }

  clear(): void {
    this.#buckets.length = 0;
    this.#byKey.clear();
    this.#byMember.clear();
  }

  #bucket(n: number): Map<string, Queued> {
    while (this.#buckets.length <= n) this.#buckets.push(new Map());
    return this.#buckets[n];
  }

  #remove(q: Queued, inBucket = true): void {
    if (inBucket) this.#buckets[q.sent]?.delete(q.key);
    this.#byKey.delete(q.key);
    const keys = this.#byMember.get(q.u.p);
    keys?.delete(q.key);
    if (keys?.size === 0) this.#byMember.delete(q.u.p);
  }
}
