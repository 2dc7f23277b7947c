// The shapes the SWIM engine (swim.ts) shares with its parts and its users: what it is built from and
// configured with, what it reports about a member and its traffic, and the reasons it refuses a peer's
// message for.

import type { Log } from '../../log/logger.ts';
import { RefusalCounter } from '../../metrics/refusals.ts';
import type { PeerSigner } from '../peer-signature.ts';
import type { Clock } from './clock.ts';
import type { Member } from './member-list.ts';
import type { Channel, MemberState } from './messages.ts';
import type { SwimTiming } from './timing.ts';
import type { DatagramTransport } from './transport.ts';

export const SWIM_REFUSAL_REASONS = [
  'too_large',
  'malformed',
  'bad_signature',
  'rate',
  'members_cap',
] as const;
export type SwimRefusalReason = (typeof SWIM_REFUSAL_REASONS)[number];

/** The counter of what the membership refused from peers, by reason (a Prometheus-style name). */
export function swimRefusals(log: Log): RefusalCounter<SwimRefusalReason> {
  return new RefusalCounter({
    name: 'xenos_membership_messages_refused_total',
    help: 'Membership (SWIM) messages and updates from peers refused, by reason.',
    reasons: SWIM_REFUSAL_REASONS,
    log,
  });
}

export interface MemberChange {
  peer: string;
  state: MemberState;
  previous: MemberState | undefined;
  incarnation: number;
  /** Who suspected it and how this host concluded (for logs and the NotReady verdict's message). */
  detail: string;
}

export interface MemberView {
  peer: string;
  state: MemberState;
  incarnation: number;
  addrs: string[];
  /** Local clock time of the last state change. */
  since: number;
  /** Members that suspect it at this incarnation (while suspect or dead). */
  suspectedBy: string[];
}

export interface TrafficStats {
  messages: number;
  bytes: number;
}

export interface SwimStats {
  sent: Record<Channel, TrafficStats>;
  received: Record<Channel, TrafficStats>;
  probes: number;
  /** Probe rounds skipped because the target had just spoken to us (small clusters only). */
  skippedProbes: number;
  indirectProbes: number;
  failedProbes: number;
  refutations: number;
}

/** Counters at zero, for a new engine. */
export function emptyStats(): SwimStats {
  return {
    sent: { probe: { messages: 0, bytes: 0 }, sync: { messages: 0, bytes: 0 } },
    received: { probe: { messages: 0, bytes: 0 }, sync: { messages: 0, bytes: 0 } },
    probes: 0,
    skippedProbes: 0,
    indirectProbes: 0,
    failedProbes: 0,
    refutations: 0,
  };
}

export interface SwimComponents {
  transport: DatagramTransport;
  signer: PeerSigner;
  clock?: Clock;
  /** This component's log (xenosd: `logger.forComponent('membership')`). */
  log?: Log;
  random?: () => number;
}

export interface SwimInit {
  timing?: SwimTiming;
  /** This host's multiaddrs, put in its signed alive record. */
  addrs?: string[];
  /** The first incarnation; default Date.now(), so a restarted host starts above its previous life. */
  incarnation?: number;
  maxMembers?: number;
  /** Bytes of updates piggybacked on one probe message (default 2 KiB). */
  piggybackBytes?: number;
  /** Messages a second one peer may send on the probe channel (default 50, burst 100). */
  peerRate?: number;
}

/** What a user sees of a member. */
export function viewOf(m: Member): MemberView {
  return {
    peer: m.peer,
    state: m.state,
    incarnation: m.incarnation,
    addrs: m.addrs,
    since: m.since,
    suspectedBy: [...(m.suspicion?.confirmers ?? [])],
  };
}

/** The last 8 characters of a peer id, as the p2p log lines show them. */
export function short(peer: string): string {
  return peer.slice(-8);
}
