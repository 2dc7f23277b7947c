// SWIM's push-pull sync (memberlist's): this host's full view — its own signed record, then every member's
// record with the state this host holds it in — sent to one peer, which answers with its own. A host that
// just connected learns the cluster in one exchange instead of waiting for gossip to reach it; a periodic
// sync with one random alive member (and one dead one, so a healed partition that kept its connection is
// noticed by both sides) repairs whatever gossip missed. Records travel signed and are checked by the
// engine (swim.ts) as from any message; the sender's own view of a member as suspect or dead is not
// signed, so it counts as one suspicion here, is never passed on, and makes this host probe the member.

import type { Clock, TimerHandle } from './clock.ts';
import type { Member, MemberList } from './member-list.ts';
import {
  type AliveUpdate,
  type Channel,
  MAX_MEMBERS,
  type Message,
  type SuspectUpdate,
  type SyncEntry,
  type Update,
} from './messages.ts';
import { type SwimTiming, syncIntervalFor } from './timing.ts';

/** Peers join() remembers, to ask again while no member is known (the first sync was lost). */
const MAX_SEEDS = 16;
/** At most one exchange per peer this often (ms): a peer reconnecting in a loop is no sync storm. */
const MIN_SYNC_GAP_MS = 1000;

/** What the sync uses of the engine. */
export interface PushPullComponents {
  self: string;
  timing: SwimTiming;
  clock: Clock;
  random: () => number;
  members: MemberList;
  /** Whether the engine runs (nothing is sent while it does not). */
  running(): boolean;
  send(peer: string, msg: Message, channel: Channel): void;
  /** This host's current signed record. */
  record(): AliveUpdate;
  /** A signed update from `from`, applied as from any message; `spread` false: not passed on. */
  receiveUpdate(u: Update, from: string, spread: boolean): void;
  /** The sender's own unsigned suspicion, applied without spreading it; true when it started one. */
  suspectedBy(u: SuspectUpdate): boolean;
  /** Probes `m` now. */
  probe(m: Member): void;
}

export class PushPull {
  readonly #c: PushPullComponents;
  readonly #joinedAt = new Map<string, number>();
  readonly #seeds = new Set<string>();
  #timer?: TimerHandle;

  constructor(components: PushPullComponents) {
    this.#c = components;
  }

  /** Syncs now and then with a random member, until stop(). */
  start(): void {
    const { timing, members, random, clock } = this.#c;
    const period = syncIntervalFor(timing, members.live + 1);
    this.#timer = clock.setTimeout(
      () => {
        if (!this.#c.running()) return;
        const [m] = members.sample(1, ['alive']);
        if (m) this.join(m.peer);
        const [d] = members.sample(1, ['dead']);
        if (d) this.join(d.peer);
        this.start();
      },
      period * (0.5 + random()),
    );
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  /** Exchanges full state with `peer` (a host that just connected): it learns us and we learn its view.
   *  At most once a second per peer. */
  join(peer: string): void {
    if (peer === this.#c.self || !this.#c.running()) return;
    if (this.#seeds.size < MAX_SEEDS) this.#seeds.add(peer);
    const now = this.#c.clock.now();
    if (now - (this.#joinedAt.get(peer) ?? Number.NEGATIVE_INFINITY) < MIN_SYNC_GAP_MS) return;
    if (this.#joinedAt.size > MAX_MEMBERS) this.#joinedAt.clear();
    this.#joinedAt.set(peer, now);
    this.#send(peer, true);
  }

  /** No member is known: ask every peer join() was given again. */
  rejoin(): void {
    for (const seed of this.#seeds) this.join(seed);
  }

  /** A peer's full state; `reply`: it asks for ours in return. */
  receive(from: string, entries: SyncEntry[], reply: boolean): void {
    for (const e of entries) {
      // Third parties' records are not spread: the sender has them and the rest learn them from their
      // own syncs, so a join is not a broadcast storm.
      this.#c.receiveUpdate(e.a, from, e.a.p === from);
      if (e.st !== 'alive' && e.a.p !== from) {
        if (this.#c.suspectedBy({ k: 'suspect', p: e.a.p, i: e.a.i, f: from, g: '' })) {
          // Our ping carries the note that we hold it suspect: a live member refutes, a dead one fails it.
          const m = this.#c.members.get(e.a.p);
          if (m) this.#c.probe(m);
        }
      }
    }
    if (reply) this.#send(from, false);
  }

  #send(peer: string, reply: boolean): void {
    const ms = this.#c.members.syncEntries(this.#c.record(), MAX_MEMBERS);
    this.#c.send(peer, { t: 'sync', r: reply, ms }, 'sync');
  }
}
