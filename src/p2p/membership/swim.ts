// The SWIM engine: its member states (alive, suspect, dead, with incarnations and refutations), its probe
// rounds and its message dispatch share one member list, one broadcast queue and this host's signed
// record; the probe, the push-pull sync, the wire (encoding, rate limits, refusals), the timing and the
// shared shapes are apart.
//
// SWIM membership (Das, Gupta, Motivala 2002) with Lifeguard's suspicion (HashiCorp memberlist): which
// hosts are alive, as this host sees it, with no replicated heartbeat. Each period this host pings one
// member (round-robin); without an ack it asks k others to ping it (ping-req); without any ack the member
// is suspect; a suspect that does not refute — by signing a higher incarnation — within the suspicion
// timeout is dead. Updates (alive, suspect) ride on the protocol's own messages and on small gossip
// messages while there are any, each sent λ·log(N) times. Traffic per host is O(1) per period.
//
// The engine is driven by messages and timers only (no promise inside), so the same code runs over
// libp2p in xenosd and on virtual time in the simulation. Everything from a peer is checked
// (messages.ts) and what fails is counted in `refusals`; see README.md for what a hostile member can
// and cannot do. Its parts: the probe and ping-req (prober.ts), the full-state exchange (push-pull.ts),
// messages on the wire with per-peer rate limits (wire.ts, rate-limits.ts), the shared shapes
// (swim-types.ts).

import { type Log, silentLogger } from '../../log/logger.ts';
import type { RefusalCounter } from '../../metrics/refusals.ts';
import type { PeerSigner } from '../peer-signature.ts';
import { Broadcasts } from './broadcasts.ts';
import { type Clock, realClock, type TimerHandle } from './clock.ts';
import { type Member, MemberList } from './member-list.ts';
import {
  type AliveUpdate,
  aliveStatement,
  type Channel,
  MAX_MEMBERS,
  MAX_UPDATES_PER_MESSAGE,
  type MemberState,
  type Message,
  rememberVerified,
  type SuspectUpdate,
  suspectStatement,
  type Update,
  verifyUpdate,
} from './messages.ts';
import { Prober } from './prober.ts';
import { PushPull } from './push-pull.ts';
import { SuspicionLimiter } from './rate-limits.ts';
import {
  emptyStats,
  type MemberChange,
  type MemberView,
  type SwimComponents,
  type SwimInit,
  type SwimRefusalReason,
  type SwimStats,
  short,
  swimRefusals,
  viewOf,
} from './swim-types.ts';
import {
  probeIntervalFor,
  retransmitLimit,
  type SwimTiming,
  skipsHeardMembers,
  suspicionTimeoutMs,
  timingFor,
} from './timing.ts';
import { SwimWire } from './wire.ts';

export class Swim extends EventTarget {
  readonly self: string;
  readonly timing: SwimTiming;
  readonly refusals: RefusalCounter<SwimRefusalReason>;
  readonly stats: SwimStats = emptyStats();
  readonly #wire: SwimWire;
  readonly #signer: PeerSigner;
  readonly #clock: Clock;
  readonly #log: Log;
  readonly #random: () => number;
  readonly #members: MemberList;
  readonly #broadcasts = new Broadcasts();
  readonly #prober: Prober;
  readonly #sync: PushPull;
  readonly #suspicions: SuspicionLimiter;
  readonly #notified = new Map<string, number>();
  readonly #maxMembers: number;
  readonly #piggyback: number;
  #incarnation: number;
  #addrs: string[];
  #record!: AliveUpdate;
  #reannouncedAt = Number.NEGATIVE_INFINITY;
  #probeTimer?: TimerHandle;
  #gossipTimer?: TimerHandle;
  #running = false;

  constructor(components: SwimComponents, init: SwimInit = {}) {
    super();
    this.#signer = components.signer;
    this.#clock = components.clock ?? realClock;
    this.#log = components.log ?? silentLogger.root;
    this.#random = components.random ?? Math.random;
    this.self = this.#signer.peerId;
    this.timing = init.timing ?? timingFor();
    this.#members = new MemberList(this.#random);
    this.#maxMembers = Math.min(init.maxMembers ?? MAX_MEMBERS, MAX_MEMBERS);
    this.#piggyback = init.piggybackBytes ?? 2048;
    this.#incarnation = init.incarnation ?? Date.now();
    this.#addrs = init.addrs ?? [];
    this.#sign();
    this.refusals = swimRefusals(this.#log);
    this.#wire = new SwimWire(
      {
        transport: components.transport,
        clock: this.#clock,
        log: this.#log,
        stats: this.stats,
        refusals: this.refusals,
      },
      { peerRate: init.peerRate ?? 50 },
    );
    this.#suspicions = new SuspicionLimiter({ clock: this.#clock }, { minMs: this.timing.suspicionMinMs });
    this.#prober = new Prober({
      self: this.self,
      timing: this.timing,
      clock: this.#clock,
      stats: this.stats,
      refusals: this.refusals,
      send: (peer, msg, channel) => this.#send(peer, msg, channel),
      updates: (peer) => this.#updates(peer),
      helpers: (count, target) => this.#members.sample(count, ['alive'], [target]),
      sign: (statement) => this.#signature(statement),
      acked: (peer) => this.#heard(peer),
    });
    this.#sync = new PushPull({
      self: this.self,
      timing: this.timing,
      clock: this.#clock,
      random: this.#random,
      members: this.#members,
      running: () => this.#running,
      send: (peer, msg, channel) => this.#send(peer, msg, channel),
      record: () => this.#record,
      receiveUpdate: (u, from, spread) => this.#receiveUpdate(u, from, spread),
      suspectedBy: (u) => this.#applySuspect(u, false),
      probe: (m) => this.#probeMember(m),
    });
    components.transport.onMessage((from, bytes, channel) => this.#receive(from, bytes, channel));
  }

  get incarnation(): number {
    return this.#incarnation;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const { probeIntervalMs } = this.timing;
    // Random phases: hosts started together do not probe in lockstep.
    const probeTick = (): void => {
      const period = probeIntervalFor(this.timing, this.#members.live + 1);
      this.#probeTimer = this.#clock.setTimeout(probeTick, period);
      this.#probeRound(period);
    };
    this.#probeTimer = this.#clock.setTimeout(probeTick, this.#random() * probeIntervalMs);
    if (this.#broadcasts.size > 0) this.#gossipSoon();
    this.#sync.start();
  }

  stop(): void {
    this.#running = false;
    for (const t of [this.#probeTimer, this.#gossipTimer]) t?.cancel();
    this.#sync.stop();
    this.#gossipTimer = undefined;
    this.#prober.stop();
    for (const m of this.#members.all()) m.suspicion?.timer?.cancel();
  }

  /** This host's addresses changed: a new signed record at the next incarnation. */
  setAddresses(addrs: string[]): void {
    if (addrs.length === this.#addrs.length && addrs.every((a, i) => a === this.#addrs[i])) return;
    this.#addrs = addrs;
    this.#incarnation++;
    this.#sign();
  }

  /** Exchanges full state with `peer` (a host that just connected): it learns us and we learn its view.
   *  At most once a second per peer. */
  join(peer: string): void {
    this.#sync.join(peer);
  }

  member(peer: string): MemberView | undefined {
    const m = this.#members.get(peer);
    return m && viewOf(m);
  }

  members(): MemberView[] {
    return [...this.#members.all()].map(viewOf);
  }

  /** Probes `peer` now, directly then through k others, as a probe round does; `done(true)` on an ack.
   *  The verdict writer calls it so that a death verdict rests on its own failed probes too. */
  probe(peer: string, done: (ok: boolean) => void): void {
    if (peer === this.self) done(true);
    else this.#prober.probe(peer, done);
  }

  // --- the probe round -------------------------------------------------------------------------------

  #probeRound(period: number): void {
    const target = this.#members.nextTarget();
    if (!target) {
      this.#sync.rejoin();
      return;
    }
    // It spoke to us within the period: that message is the evidence our probe would fetch.
    const heard = this.#clock.now() - (target.heardAt ?? Number.NEGATIVE_INFINITY) < period;
    if (heard && target.state === 'alive' && skipsHeardMembers(this.#members.live + 1)) {
      this.stats.skippedProbes++;
      return;
    }
    this.#probeMember(target);
  }

  /** A message from `peer` (or its signed ack through a relay) arrived: it is alive now. */
  #heard(peer: string): void {
    const m = this.#members.get(peer);
    if (m) m.heardAt = this.#clock.now();
  }

  /** Probes a member; no ack, directly or relayed: this host suspects it (or confirms the suspicion). */
  #probeMember(target: Member): void {
    this.stats.probes++;
    const inc = target.incarnation;
    this.#prober.probe(target.peer, (ok) => {
      if (ok) return;
      this.stats.failedProbes++;
      const m = this.#members.get(target.peer);
      if (m && m.state !== 'dead' && m.incarnation === inc) this.#suspect(m, 'own probe failed');
    });
  }

  /** Queues an update to spread, piggybacked on probes and acks and, while any is queued, gossiped every
   *  T/2 (an idle host runs no gossip timer: nothing to say, no wake-up). */
  #spread(u: Update): void {
    this.#broadcasts.add(u);
    this.#gossipSoon();
  }

  #gossipSoon(): void {
    if (this.#gossipTimer || !this.#running) return;
    const tick = (): void => {
      this.#gossipTimer = undefined;
      if (!this.#running || this.#broadcasts.size === 0) return;
      this.#gossipRound();
      this.#gossipTimer = this.#clock.setTimeout(tick, this.timing.gossipIntervalMs);
    };
    this.#gossipTimer = this.#clock.setTimeout(tick, this.timing.gossipIntervalMs);
  }

  #gossipRound(): void {
    for (const m of this.#members.sample(this.timing.gossipFanout, ['alive', 'suspect'])) {
      const { u } = this.#updates();
      if (!u) return;
      this.#send(m.peer, { t: 'gossip', u }, 'probe');
    }
  }

  // --- states -----------------------------------------------------------------------------------------

  /** This host's own failed probe of `m`: suspect it (or confirm the suspicion), signed by this host. */
  #suspect(m: Member, why: string): void {
    const u = this.#suspicionOf(m);
    rememberVerified(u);
    this.#log.debug(`${short(m.peer)}: ${why}; suspect at incarnation ${m.incarnation}`);
    this.#applySuspect(u, true);
  }

  /** Whether `f`'s suspicion of `p` may start a suspicion now: one per suspector and member per
   *  minimum suspicion time, so a hostile member cannot keep a member flapping (or refuting) at will.
   *  This host's own suspicions obey the same rule: others would refuse to spread one that broke it, and
   *  a suspicion held here alone could not reach the member to be refuted. */
  #mayStartSuspicion(f: string, p: string): boolean {
    if (this.#suspicions.mayStart(f, p)) return true;
    if (f !== this.self)
      this.refusals.count('rate', `suspicion of ${short(p)} by ${short(f)} again within the minimum`);
    return false;
  }

  /** Applies a suspicion; true when it started one (the member was alive here). */
  #applySuspect(u: SuspectUpdate, broadcast: boolean): boolean {
    if (u.p === this.self) {
      // Some hosts hold an older incarnation of ours (they missed a refutation): spread ours again.
      if (u.i < this.#incarnation) this.#reannounce();
      // Only our own current incarnation can be suspected (we alone sign incarnations).
      if (u.i !== this.#incarnation || !this.#mayStartSuspicion(u.f, u.p)) return false;
      this.#incarnation++;
      this.stats.refutations++;
      this.#sign();
      this.#log.info(`suspected by ${short(u.f)}; refuted at incarnation ${this.#incarnation}`);
      return false;
    }
    const m = this.#members.get(u.p);
    if (!m || m.state === 'dead' || u.i !== m.incarnation) return false;
    const now = this.#clock.now();
    let started = false;
    if (m.state === 'alive') {
      if (!this.#mayStartSuspicion(u.f, u.p)) return false;
      m.state = 'suspect';
      m.since = now;
      m.suspicion = { startedAt: now, confirmers: new Set([u.f]) };
      this.#armSuspicion(m);
      this.#changed(m, 'alive', `suspected by ${short(u.f)}`);
      started = true;
    } else if (m.suspicion && !m.suspicion.confirmers.has(u.f)) {
      m.suspicion.confirmers.add(u.f);
      this.#armSuspicion(m);
    } else {
      return false;
    }
    if (broadcast) this.#spread(u);
    return started;
  }

  /** Queues this host's current record to be spread again (at most once a period). */
  #reannounce(): void {
    const now = this.#clock.now();
    if (now - this.#reannouncedAt < this.timing.probeIntervalMs) return;
    this.#reannouncedAt = now;
    this.#spread(this.#record);
  }

  #armSuspicion(m: Member): void {
    const s = m.suspicion!;
    s.timer?.cancel();
    const timeout = suspicionTimeoutMs(this.timing, s.confirmers.size - 1, this.#members.live + 1);
    const inc = m.incarnation;
    s.timer = this.#clock.setTimeout(
      () => {
        if (m.state !== 'suspect' || m.incarnation !== inc || m.suspicion !== s) return;
        m.state = 'dead';
        m.since = this.#clock.now();
        this.#changed(
          m,
          'suspect',
          `no refutation within ${Math.round(timeout / 1000)} s of the suspicion by ${[...s.confirmers].map(short).join(', ')}`,
        );
      },
      Math.max(0, s.startedAt + timeout - this.#clock.now()),
    );
  }

  /** `spread`: pass a new member's record on (false for third parties' records in a sync: the sender
   *  has them already and the rest learn them from their own syncs, so a join is not a broadcast storm). */
  #applyAlive(u: AliveUpdate, spread = true): void {
    if (u.p === this.self) {
      // A record of ours above our incarnation: an earlier life of this host. Start above it.
      if (u.i > this.#incarnation) {
        this.#incarnation = u.i + 1;
        this.#sign();
      }
      return;
    }
    const m = this.#members.get(u.p);
    if (!m) {
      if (this.#members.size >= this.#maxMembers) {
        const evict = this.#members.oldestDead();
        if (!evict) {
          this.refusals.count('members_cap', `${short(u.p)}: already ${this.#maxMembers} members`);
          return;
        }
        this.#members.delete(evict.peer);
        this.#wire.forget(evict.peer);
      }
      const now = this.#clock.now();
      const added: Member = {
        peer: u.p,
        incarnation: u.i,
        addrs: u.m,
        record: u,
        state: 'alive',
        since: now,
      };
      this.#members.add(added);
      this.#wire.setAddresses(u.p, u.m);
      if (spread) this.#spread(u);
      this.#changed(added, undefined, 'joined');
      return;
    }
    if (u.i <= m.incarnation) return;
    const previous = m.state;
    m.incarnation = u.i;
    m.addrs = u.m;
    m.record = u;
    this.#wire.setAddresses(u.p, u.m);
    if (spread || previous !== 'alive') this.#spread(u);
    if (previous === 'alive') return;
    m.suspicion?.timer?.cancel();
    m.suspicion = undefined;
    m.state = 'alive';
    m.since = this.#clock.now();
    if (previous === 'dead') this.#members.revived(m.peer);
    this.#changed(m, previous, `refuted at incarnation ${u.i}`);
  }

  #changed(m: Member, previous: MemberState | undefined, detail: string): void {
    if (m.state === 'dead' || previous === 'dead' || previous === undefined)
      this.#log.info(`${short(m.peer)}: ${previous ?? 'new'} -> ${m.state} (${detail})`);
    else this.#log.debug(`${short(m.peer)}: ${previous} -> ${m.state} (${detail})`);
    const { peer, state, incarnation } = m;
    const change: MemberChange = { peer, state, previous, incarnation, detail };
    this.dispatchEvent(new CustomEvent<MemberChange>('change', { detail: change }));
  }

  #sign(): void {
    this.#record = {
      k: 'alive',
      p: this.self,
      i: this.#incarnation,
      m: this.#addrs,
      g: this.#signature(aliveStatement(this.self, this.#incarnation, this.#addrs)),
    };
    rememberVerified(this.#record);
    this.#spread(this.#record);
  }

  #signature(stmt: Uint8Array): string {
    return Buffer.from(this.#signer.sign(stmt)).toString('base64url');
  }

  // --- messages ---------------------------------------------------------------------------------------

  /** Updates to piggyback; to `peer` also the note that we hold it suspect or dead, if we do. */
  #updates(peer?: string): { u?: Update[] } {
    const note = peer === undefined ? undefined : this.#note(peer);
    const u = this.#broadcasts.take(
      this.#piggyback,
      retransmitLimit(this.timing, this.#members.live + 1),
      MAX_UPDATES_PER_MESSAGE - 1,
    );
    if (note) u.push(note);
    return u.length > 0 ? { u } : {};
  }

  #send(peer: string, msg: Message, channel: Channel): void {
    this.#wire.send(peer, msg, channel);
  }

  #receive(from: string, bytes: Uint8Array, channel: Channel): void {
    if (!this.#running || from === this.self) return;
    const msg = this.#wire.receive(from, bytes, channel);
    if (!msg) return;
    this.#heard(from);
    if (msg.t === 'sync') {
      this.#sync.receive(from, msg.ms, msg.r);
      return;
    }
    for (const u of msg.u ?? []) this.#receiveUpdate(u, from);
    this.#prober.handle(from, msg);
    if (!this.#members.get(from)) this.join(from);
  }

  /** A member this host holds suspect or dead, that we talk with: tell it (once a period), so that it
   *  refutes if it is alive. */
  #note(peer: string): SuspectUpdate | undefined {
    const m = this.#members.get(peer);
    if (!m || m.state === 'alive') return undefined;
    const now = this.#clock.now();
    if (now - (this.#notified.get(peer) ?? -Infinity) < this.timing.probeIntervalMs) return undefined;
    if (this.#notified.size > MAX_MEMBERS) this.#notified.clear();
    this.#notified.set(peer, now);
    return this.#suspicionOf(m);
  }

  /** This host's signed suspicion of `m` at its current incarnation. */
  #suspicionOf(m: Member): SuspectUpdate {
    const g = this.#signature(suspectStatement(m.peer, m.incarnation, this.self));
    return { k: 'suspect', p: m.peer, i: m.incarnation, f: this.self, g };
  }

  #receiveUpdate(u: Update, from: string, spread = true): void {
    if (!verifyUpdate(u)) {
      this.refusals.count('bad_signature', `${u.k} of ${short(u.p)} from ${short(from)}`);
      return;
    }
    if (u.k === 'alive') this.#applyAlive(u, spread);
    else this.#applySuspect(u, true);
  }
}
