// Models of the two alternatives the membership protocol is compared with, at sizes too large to run:
//
// - replicated heartbeat rows (what xenosd did before): every host rewrites its Host row every H, and the
//   replicator pushes each write to every other host (a full mesh: N−1 sends; `overhead` scales that by
//   what bench/cluster-convergence.ts measured per write, 181 sends for 29 needed at 30 hosts ≈ 6.2);
// - heartbeats published on gossipsub (@libp2p/gossipsub's defaults: mesh degree D = 6, gossip to
//   D_lazy = 6 or a quarter of the other connected peers each 1 s heartbeat, IHAVE listing the message
//   ids of the last 3 heartbeats): each host publishes every H; each host forwards a message it has not
//   seen to its D mesh peers but the sender, and lists ids in IHAVE gossip.
//
// Both judge a host dead when no heartbeat came for τ, so detection is τ minus the age of the last
// heartbeat at the kill (uniform on [0, H)) plus a few ms of spreading: drawn here, not simulated.
// bench/membership-gossipsub.ts measures real gossipsub at small sizes next to this model.

import { seeded } from './swim-sim.ts';

export interface ModelResult {
  /** Sent per host per second. */
  messages: number;
  bytes: number;
  /** Time from the kill until the first / every live host judges it dead (samples, ms). */
  detection: { first: number[]; all: number[] };
}

export interface HeartbeatRowsInit {
  hosts: number;
  hostTimeoutMs: number;
  intervalMs: number;
  /** One Host row as pushed (object, versions, proofs). */
  rowBytes: number;
  /** Rows sent per write over the N−1 needed (1 = ideal). */
  overhead: number;
}

export function heartbeatRowsModel(init: HeartbeatRowsInit, samples = 1000): ModelResult {
  const writesPerS = 1000 / init.intervalMs;
  const messages = writesPerS * (init.hosts - 1) * init.overhead;
  return {
    messages,
    bytes: messages * init.rowBytes,
    detection: timeoutDetection(init.hostTimeoutMs, init.intervalMs, 2, samples),
  };
}

export interface GossipsubInit {
  hosts: number;
  hostTimeoutMs: number;
  intervalMs: number;
  /** One heartbeat as gossipsub sends it (payload, from, seqno, topic, signature, framing). */
  messageBytes: number;
  /** Peers each host is connected to (the connection manager's limit caps it). */
  connected: number;
  D?: number;
  Dlazy?: number;
  gossipFactor?: number;
  heartbeatMs?: number;
  mcacheGossip?: number;
  /** A message id (from peer id + seqno) as listed in IHAVE. */
  idBytes?: number;
  maxIHaveLength?: number;
}

export function gossipsubModel(init: GossipsubInit, samples = 1000): ModelResult {
  const D = Math.min(init.D ?? 6, init.connected);
  const heartbeatS = (init.heartbeatMs ?? 1000) / 1000;
  const publishesPerS = (init.hosts * 1000) / init.intervalMs;
  // Each host forwards every message once to its mesh peers but the one it came from.
  const data = publishesPerS * Math.max(0, D - 1);
  const nonMesh = Math.max(0, init.connected - D);
  const gossipTargets = Math.min(nonMesh, Math.max(init.Dlazy ?? 6, (init.gossipFactor ?? 0.25) * nonMesh));
  const ids = Math.min(init.maxIHaveLength ?? 5000, publishesPerS * heartbeatS * (init.mcacheGossip ?? 3));
  const ihavesPerS = ids > 0 ? gossipTargets / heartbeatS : 0;
  const hops = Math.ceil(Math.log(init.hosts) / Math.log(Math.max(2, D - 1)));
  return {
    messages: data + ihavesPerS,
    bytes: data * init.messageBytes + ihavesPerS * (ids * (init.idBytes ?? 48) + 40),
    detection: timeoutDetection(init.hostTimeoutMs, init.intervalMs, 2 * hops, samples),
  };
}

/** "No heartbeat for τ": the last heartbeat was sent U[0, H) before the kill, and reached everyone within
 *  `spreadMs`; the first host and the last judge it dead within `spreadMs` of each other. */
function timeoutDetection(tau: number, interval: number, spreadMs: number, samples: number) {
  const random = seeded(7);
  const first: number[] = [];
  const all: number[] = [];
  for (let i = 0; i < samples; i++) {
    const base = tau - random() * interval;
    first.push(base);
    all.push(base + spreadMs);
  }
  return { first, all };
}
