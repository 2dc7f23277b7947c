// Benchmark: how long a write on one host takes to reach every host of the cluster, over the real
// transport (XenosNodes with the cluster key on 127.0.0.1, /xenos/state/1.0.0, durable SQLite
// stores), all hosts in this one process. A write is timed from the store call on a random host to
// the watch event of that object on the last of the other hosts. Prints p50/p99 at each cluster size
// next to the bound: p99 ≤ 1 s at 10 hosts and ≤ 2 s at 30, with the load average (all hosts share
// this process's one thread and the machine's cores). Rows sent per write (push and anti-entropy, over
// the writes) are printed beside their bound, 1.5 × (N−1): each write to each other host about once.
//
// Each host pushes its writes to every live member, as xenosd does (the membership's list; here every
// host's peer id), dialling those it has no connection to; receivers pass nothing on. The connections
// start as a partial mesh: each host dials `dials` others (a ring edge, so the graph is connected, plus
// random ones; default: everyone up to 10 hosts, 8 above).
//
// Each host's store signs what it writes and checks what it receives (as xenosd does in a cluster:
// src/store/row-authority.ts); `--unsigned` measures without, for the cost of signing.
//
//   node --no-warnings bench/convergence.ts [sizes=10,30] [writes=100] [intervalMs=50] [dials] [--unsigned]

import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterRowAuthority } from '../src/cluster/write-policy.ts';
import { createLogger } from '../src/log/logger.ts';
import type { XObject } from '../src/model/object.ts';
import { openXenosNode, type XenosNode } from '../src/p2p/node.ts';
import { loadOrCreatePeerKey, PEER_KEY_FILE } from '../src/p2p/peer-key.ts';
import { createClusterKey } from '../src/p2p/pnet/cluster-key.ts';
import { Libp2pTransport } from '../src/store/replication/libp2p-transport.ts';
import { Replicator } from '../src/store/replication/replicator.ts';
import { openStore, type SqliteStore } from '../src/store/sqlite-store.ts';
import { recordFigure } from './lib/figures.ts';
import { percentile } from './lib/stats.ts';
import { until } from './lib/wait.ts';

/** Replication's warnings, as xenosd would log them (to stderr). */
const benchLog = createLogger({ level: 'warn' }).forComponent('replication');
/** p99 bound by cluster size (issue 9). */
const boundP99 = (n: number) => (n <= 10 ? 1000 : n <= 30 ? 2000 : undefined);
const unsigned = process.argv.includes('--unsigned');
const tag = unsigned ? ', unsigned' : '';
const args = process.argv.slice(2).filter((a) => a !== '--unsigned');
const sizes = (args[0] ?? '10,30').split(',').map(Number);
const writes = Number(args[1] ?? 100);
const intervalMs = Number(args[2] ?? 50);
const dialsArg = args[3] === undefined ? undefined : Number(args[3]);

interface Host {
  node: XenosNode;
  store: SqliteStore;
  replicator: Replicator;
}

function instance(name: string): XObject {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name, namespace: 'bench' },
    spec: { templateRef: { name: 'web' }, runStrategy: 'Always' },
  };
}

/** Whom host i dials: the next host (a ring: connected) and `dials - 1` others at random. */
function dialPlan(n: number, dials: number): Array<Set<number>> {
  return Array.from({ length: n }, (_, i) => {
    const targets = new Set([(i + 1) % n]);
    const others = Array.from({ length: n }, (_, j) => j).filter((j) => j !== i && !targets.has(j));
    while (targets.size < Math.min(dials, n - 1)) {
      targets.add(others.splice(Math.floor(Math.random() * others.length), 1)[0]);
    }
    return targets;
  });
}

/** Whether the hosts' current connections join all of them into one graph. */
function connected(nodes: XenosNode[]): boolean {
  const index = new Map(nodes.map((x, i) => [x.peerId.toString(), i]));
  const seen = new Set([0]);
  const todo = [0];
  while (todo.length > 0) {
    for (const p of nodes[todo.pop()!].connectedPeers()) {
      const j = index.get(p);
      if (j !== undefined && !seen.has(j)) {
        seen.add(j);
        todo.push(j);
      }
    }
  }
  return seen.size === nodes.length;
}

interface Result {
  p50: number;
  p99: number;
  max: number;
  rowsPerWrite: number;
  failedPushes: number;
  peersMin: number;
  peersMean: number;
  meshMs: number;
  load: string;
}

async function run(n: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'xenos-bench-conv-'));
  const hosts: Host[] = [];
  try {
    const keyFile = join(dir, 'swarm.key');
    await createClusterKey(keyFile);
    const nodes = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const node = await openXenosNode({
          dataDir: join(dir, `h${i}`),
          listen: '127.0.0.1:0',
          clusterKeyFile: keyFile,
        });
        await node.start();
        return node;
      }),
    );
    const t = performance.now();
    const plan = dialPlan(n, dialsArg ?? (n <= 10 ? n - 1 : 8));
    for (const [i, targets] of plan.entries()) {
      await Promise.all([...targets].map((j) => nodes[i].dial(nodes[j].multiaddrs[0])));
    }
    await until(() => connected(nodes), 60_000, 'the hosts to form one connected graph');
    const meshMs = performance.now() - t;
    const members = nodes.map((x) => x.peerId.toString());
    for (const [i, node] of nodes.entries()) {
      const { privateKey } = await loadOrCreatePeerKey(join(dir, `h${i}`, PEER_KEY_FILE));
      const store = openStore({
        path: join(dir, `h${i}`, 'state.db'),
        namespaced: () => true,
        writer: `host-${i}`,
        authority: unsigned ? undefined : clusterRowAuthority(privateKey, node.peerId.toString()),
      });
      const replicator = new Replicator(
        {
          store,
          transport: new Libp2pTransport({ node, members: () => members }),
          log: benchLog.child({ host: `host-${i}` }),
        },
        { syncIntervalMs: 5000 },
      );
      hosts.push({ node, store, replicator });
    }
    await Promise.all(hosts.map((h) => h.replicator.start()));

    const arrivals = new Map<string, number[]>();
    for (const h of hosts) {
      h.store.watch('ServiceInstance', {}, (ev) => {
        if (ev.type === 'ADDED') arrivals.get(ev.object.metadata.name)?.push(performance.now());
      });
    }
    const latencies: number[] = [];
    const load = loadavg()[0];
    const pending: Array<Promise<void>> = [];
    for (let w = 0; w < writes; w++) {
      const name = `w-${n}-${w}`;
      const times: number[] = [];
      arrivals.set(name, times);
      const t0 = performance.now();
      hosts[Math.floor(Math.random() * n)].store.create(instance(name));
      pending.push(
        until(() => times.length === n, 30_000, `${name} on all hosts`).then(() => {
          latencies.push(Math.max(...times) - t0);
        }),
      );
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    await Promise.all(pending);
    latencies.sort((a, b) => a - b);
    await until(() => hosts.every((h) => h.replicator.idle), 30_000, 'every push answered');
    const total = (f: (s: Replicator['stats']) => number) =>
      hosts.reduce((sum, h) => sum + f(h.replicator.stats), 0);
    const sent = total((s) => s.pushedRows + s.syncedRows);
    const localWrites = total((s) => s.localWrites);
    const peers = nodes.map((x) => x.connectedPeers().length);
    return {
      peersMin: Math.min(...peers),
      peersMean: peers.reduce((a, b) => a + b, 0) / n,
      meshMs,
      load: `${load.toFixed(1)} → ${loadavg()[0].toFixed(1)}`,
      rowsPerWrite: sent / localWrites,
      failedPushes: total((s) => s.failedPushes),
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1],
    };
  } finally {
    await Promise.all(hosts.map((h) => h.replicator.stop()));
    for (const h of hosts) h.store.close();
    await Promise.all(hosts.map((h) => h.node.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `convergence: ${writes} creates, one every ${intervalMs} ms on a random host, libp2p on 127.0.0.1, one process, ` +
    `rows ${unsigned ? 'unsigned' : 'signed and checked'}`,
);
for (const n of sizes) {
  const r = await run(n);
  const bench = 'convergence';
  const note = `${r.peersMean.toFixed(1)} peers per host, load average ${r.load}`;
  recordFigure({ bench, name: `${n} hosts p50${tag}`, value: r.p50, unit: 'ms', note });
  recordFigure({
    bench,
    name: `${n} hosts p99${tag}`,
    value: r.p99,
    unit: 'ms',
    bound: boundP99(n),
    note,
  });
  const rowsBound = 1.5 * (n - 1);
  recordFigure({
    bench,
    name: `${n} hosts rows sent per write${tag}`,
    value: r.rowsPerWrite,
    unit: 'rows',
    bound: rowsBound,
    note: `${r.failedPushes} failed pushes; ${note}`,
  });
  const bound = boundP99(n);
  console.log(
    `${n} hosts (connected to min ${r.peersMin}, mean ${r.peersMean.toFixed(1)} peers at the end; first mesh in ${(r.meshMs / 1000).toFixed(1)} s; ` +
      `load average ${r.load}): p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms` +
      (bound
        ? ` (bound p99 <= ${bound} ms, ratio ${(r.p99 / bound).toFixed(2)})`
        : ' (no bound at this size)') +
      `; rows sent per write ${r.rowsPerWrite.toFixed(1)} (bound ${rowsBound.toFixed(1)}, ratio ${(r.rowsPerWrite / rowsBound).toFixed(2)}), ${r.failedPushes} failed pushes`,
  );
}
