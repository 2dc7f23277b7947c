// Benchmark of host membership with REAL libp2p nodes in one process (TCP loopback), the two candidates
// side by side at the same sizes and host timeout:
//  - SWIM, as xenosd runs it (src/p2p/membership: Membership on XenosNodes, cluster key on);
//  - heartbeats published on @libp2p/gossipsub 17 (every host publishes every H = τ/5 on one topic, each
//    host judges a host dead after τ without one; mesh-only publishing — floodPublish off, or every
//    publish goes to every peer), on plain libp2p nodes (TCP, Noise, Yamux, identify).
// For each: what a host sends per second while idle (messages, bytes — each protocol's own count of its
// payload: SWIM's encoded messages, gossipsub's RPC bytes from its metrics), and how long after a node is
// stopped every other node holds it dead (bound: τ + 1 s). The gossipsub figures are also printed beside
// the model bench/membership-sim.ts uses at 100 and 1,000 hosts (ratio = measured / model).
//
//   node bench/membership-real.ts [sizes=10,20] [--host-timeout 5s] [--idle 10]

import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { type GossipSub, gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { tcp } from '@libp2p/tcp';
import { createLibp2p, type Libp2p } from 'libp2p';
import { Membership } from '../src/p2p/membership/membership.ts';
import type { MemberChange } from '../src/p2p/membership/swim-types.ts';
import { loadOrCreatePeerKey, PEER_KEY_FILE } from '../src/p2p/peer-key.ts';
import { peerSigner } from '../src/p2p/peer-signature.ts';
import { TestNet } from '../test/p2p/cluster.ts';
import { flag, positionalArgs } from './lib/args.ts';
import { printFigure } from './lib/figures.ts';
import { gossipsubModel } from './lib/membership-models.ts';
import { seeded } from './lib/swim-sim.ts';
import { until } from './lib/wait.ts';

const positional = positionalArgs();
const sizes = (positional[0] ?? '10,20').split(',').map(Number);
const tau = Number(flag('--host-timeout', '5s').replace(/s$/, '')) * 1000;
const idleS = Number(flag('--idle', '10'));
const H = Math.round(tau / 5);
const bench = 'membership-real';
const W = 50;
const random = seeded(11);

/** A MetricsRegister that keeps each unlabelled gauge's value, enough to read gossipsub's RPC counts. */
function metricsRegister() {
  const values = new Map<string, number>();
  const gauge = (cfg: { name: string }) => ({
    inc: (a?: unknown, b?: number) => {
      const v = typeof a === 'number' ? a : (b ?? 1);
      values.set(cfg.name, (values.get(cfg.name) ?? 0) + v);
    },
    set: () => {},
    addCollect: () => {},
  });
  return {
    values,
    register: {
      gauge,
      histogram: () => ({ startTimer: () => () => {}, observe: () => {}, reset: () => {} }),
      avgMinMax: () => ({ set: () => {} }),
    },
  };
}

interface Outcome {
  msgsPerS: number;
  bytesPerS: number;
  allDeadMs: number;
}

async function measureGossipsub(n: number): Promise<Outcome & { messageBytes: number }> {
  const nodes: { node: Libp2p<{ pubsub: GossipSub; identify: unknown }>; metrics: Map<string, number> }[] =
    [];
  try {
    for (let i = 0; i < n; i++) {
      const m = metricsRegister();
      const node = (await createLibp2p({
        privateKey: await generateKeyPair('Ed25519'),
        addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'], inboundConnectionThreshold: 1000 },
        services: {
          identify: identify(),
          pubsub: gossipsub({
            allowPublishToZeroTopicPeers: true,
            floodPublish: false,
            // Every node is on 127.0.0.1 here: without this, peer scoring's IP-colocation penalty
            // graylists them all above 10 nodes and heartbeats stop arriving.
            scoreParams: { IPColocationFactorWeight: 0 },
            metricsRegister: m.register as never,
            metricsTopicStrToLabel: new Map([['xenos/heartbeat', 'heartbeat']]),
          }),
        },
      })) as unknown as Libp2p<{ pubsub: GossipSub; identify: unknown }>;
      nodes.push({ node, metrics: m.values });
    }
    // Each node dials the first and up to 7 others: a connected graph with more than D = 6 peers each.
    for (const [i, { node }] of nodes.entries()) {
      const targets = new Set([0, ...Array.from({ length: 7 }, () => Math.floor(random() * n))]);
      targets.delete(i);
      await Promise.all([...targets].map((t) => node.dial(nodes[t].node.getMultiaddrs()[0]).catch(() => {})));
    }
    const lastSeen = nodes.map(() => new Map<string, number>());
    for (const [i, { node }] of nodes.entries()) {
      node.services.pubsub.subscribe('xenos/heartbeat');
      node.services.pubsub.addEventListener('message', (evt) => {
        lastSeen[i].set(new TextDecoder().decode(evt.detail.data).split(' ')[0], performance.now());
      });
    }
    const names = nodes.map((x) => x.node.peerId.toString());
    let seq = 0;
    const timers = nodes.map(({ node }, i) =>
      setInterval(() => {
        node.services.pubsub
          .publish('xenos/heartbeat', new TextEncoder().encode(`${names[i]} ${++seq} ${Date.now()}`))
          .catch(() => {});
      }, H),
    );
    await until(
      () => lastSeen.every((m, i) => m.size === n - 1 || i < 0),
      60_000,
      'every heartbeat heard everywhere',
      100,
    );
    const sent = () =>
      nodes.map((x) => ({
        b: x.metrics.get('gossipsub_rpc_sent_bytes_total') ?? 0,
        m: x.metrics.get('gossipsub_rpc_sent_count_total') ?? 0,
      }));
    const dataSent = () =>
      nodes.reduce((a, x) => a + (x.metrics.get('gossipsub_rpc_sent_message_total') ?? 0), 0);
    const before = sent();
    const dataBefore = dataSent();
    await new Promise((r) => setTimeout(r, idleS * 1000));
    const after = sent();
    const msgs = after.reduce((a, x, i) => a + x.m - before[i].m, 0) / n / idleS;
    const bytes = after.reduce((a, x, i) => a + x.b - before[i].b, 0) / n / idleS;
    const dataMsgs = dataSent() - dataBefore;
    // Kill one: every other node holds it dead once it has heard nothing from it for τ.
    const victim = n - 1;
    clearInterval(timers[victim]);
    await nodes[victim].node.stop();
    const t0 = performance.now();
    const vname = names[victim];
    await until(
      () => lastSeen.slice(0, victim).every((m) => performance.now() - (m.get(vname) ?? 0) > tau),
      tau + 10_000,
      'every node holds the stopped one dead',
      20,
    );
    const allDeadMs = performance.now() - t0;
    for (const t of timers) clearInterval(t);
    return {
      msgsPerS: msgs,
      bytesPerS: bytes,
      allDeadMs,
      messageBytes: dataMsgs > 0 ? (bytes * n * idleS) / dataMsgs : Number.NaN,
    };
  } finally {
    await Promise.allSettled(nodes.map((x) => x.node.stop()));
  }
}

async function measureSwim(n: number): Promise<Outcome> {
  const net = new TestNet();
  const ms: Membership[] = [];
  try {
    const hosts = await net.startCluster(n);
    for (const h of hosts) {
      const { privateKey } = await loadOrCreatePeerKey(join(h.dataDir, PEER_KEY_FILE));
      const m = new Membership(
        { node: h.node, signer: peerSigner(privateKey, h.node.peerId.toString()) },
        { hostTimeoutMs: tau },
      );
      await m.start();
      ms.push(m);
    }
    await until(
      () => ms.every((m) => m.members().filter((v) => v.state === 'alive').length === n - 1),
      60_000,
      'every host alive everywhere',
      100,
    );
    await new Promise((r) => setTimeout(r, 5000)); // the join's updates spread
    const total = (m: Membership) => ({
      m: m.swim.stats.sent.probe.messages + m.swim.stats.sent.sync.messages,
      b: m.swim.stats.sent.probe.bytes + m.swim.stats.sent.sync.bytes,
    });
    const before = ms.map(total);
    await new Promise((r) => setTimeout(r, idleS * 1000));
    const after = ms.map(total);
    const victim = ms[n - 1];
    const observers = ms.slice(0, n - 1);
    const dead = observers.map(
      (m) =>
        new Promise<number>((resolve) => {
          const off = m.onChange((c: MemberChange) => {
            if (c.peer === victim.self && c.state === 'dead') {
              off();
              resolve(performance.now());
            }
          });
        }),
    );
    const t0 = performance.now();
    await victim.stop();
    await hosts[n - 1].node.stop();
    const allDeadMs = Math.max(...(await Promise.all(dead))) - t0;
    return {
      msgsPerS: after.reduce((a, x, i) => a + x.m - before[i].m, 0) / n / idleS,
      bytesPerS: after.reduce((a, x, i) => a + x.b - before[i].b, 0) / n / idleS,
      allDeadMs,
    };
  } finally {
    for (const m of ms) await m.stop();
    await net.cleanup();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'xenos-bench-membership-'));
try {
  for (const n of sizes) {
    const l0 = loadavg()[0].toFixed(1);
    const swim = await measureSwim(n);
    const gs = await measureGossipsub(n);
    const note = `τ ${tau / 1000} s, heartbeat ${H} ms, idle ${idleS} s; load ${l0} -> ${loadavg()[0].toFixed(1)}`;
    const model = gossipsubModel({
      hosts: n,
      hostTimeoutMs: tau,
      intervalMs: H,
      messageBytes: gs.messageBytes,
      connected: Math.min(n - 1, 8 + 8),
    });
    console.log(`\n${n} libp2p nodes in one process`);
    printFigure(
      {
        bench,
        name: `${n} nodes SWIM dead at every node`,
        value: swim.allDeadMs,
        unit: 'ms',
        bound: tau + 1000,
        note,
      },
      W,
    );
    printFigure(
      {
        bench,
        name: `${n} nodes gossipsub heartbeats dead at every node`,
        value: gs.allDeadMs,
        unit: 'ms',
        bound: tau + 1000,
        note,
      },
      W,
    );
    printFigure(
      {
        bench,
        name: `${n} nodes SWIM sent per node, idle`,
        value: swim.msgsPerS,
        unit: 'msgs/s',
        bound: Math.round(gs.msgsPerS),
        note: `${swim.bytesPerS.toFixed(0)} B/s; bound = gossipsub heartbeats`,
      },
      W,
    );
    printFigure(
      {
        bench,
        name: `${n} nodes SWIM bytes per node, idle`,
        value: swim.bytesPerS,
        unit: 'B/s',
        bound: Math.round(gs.bytesPerS),
        note: 'bound = gossipsub heartbeats',
      },
      W,
    );
    printFigure(
      {
        bench,
        name: `${n} nodes gossipsub sent per node, measured`,
        value: gs.msgsPerS,
        unit: 'msgs/s',
        bound: Math.round(model.messages),
        note: `${gs.bytesPerS.toFixed(0)} B/s, model ${model.bytes.toFixed(0)} B/s; bound = the sim's model; ${gs.messageBytes.toFixed(0)} B per heartbeat sent`,
      },
      W,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
