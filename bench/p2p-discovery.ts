// Benchmark of the p2p overlay: service discovery latency from a cold node, signed-record put/get, and RSS per
// node, for clusters of 10 and 30 nodes in one process over TCP loopback with the cluster key (pnet) on.
// Discovery from a cold host is measured on both paths of the discover API (src/cluster/discover-api.ts):
// `store` — the cold host answers from its replicated store (filled here with the providers' Host and
// ServiceInstance objects as replication delivers them; replication itself is measured in
// cluster-convergence, which times the same call through real xenosd), its liveness view warming up as a
// freshly started xenosd's does — and `dht`, the provider records and signed host records. Each figure
// says which path answered how many of its queries.
// Prints each figure with the bound it is held against and the ratio (figure / target; <= 1 meets it).
// Run: node_modules/.bin/node bench/p2p-discovery.ts [sizes, default "10,30"]

import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { discover } from '../src/cluster/discover-api.ts';
import { HostLiveness } from '../src/cluster/liveness.ts';
import type { XObject } from '../src/model/object.ts';
import { Discovery } from '../src/p2p/discovery.ts';
import { openXenosNode, type XenosNode } from '../src/p2p/node.ts';
import { loadOrCreatePeerKey } from '../src/p2p/peer-key.ts';
import { createClusterKey } from '../src/p2p/pnet/cluster-key.ts';
import { RecordPublisher } from '../src/p2p/record-publisher.ts';
import { hostRecordKey } from '../src/p2p/records.ts';
import { openStore } from '../src/store/sqlite-store.ts';
import { recordFigure } from './lib/figures.ts';
import { percentile, sortedCopy } from './lib/stats.ts';
import { until } from './lib/wait.ts';

interface Host {
  node: XenosNode;
  records: RecordPublisher;
  discovery: Discovery;
}

const sizes = (process.argv[2] ?? '10,30').split(',').map(Number);
const PROVIDERS = 3;
const TARGETS: Record<string, (n: number) => number> = {
  'discover cold p50 ms': (n) => (n <= 10 ? 20 : 60),
  'discover cold p50 ms (API, auto)': (n) => (n <= 10 ? 20 : 60),
  'discover cold first-endpoint p50 ms': (n) => (n <= 10 ? 20 : 60),
  'discover warm p50 ms': (n) => (n <= 10 ? 20 : 60),
  'record put p50 ms': (n) => (n <= 10 ? 70 : 200),
  'record get p50 ms': (n) => (n <= 10 ? 75 : 200),
  'RSS per node MB': () => 15,
};

const root = await mkdtemp(join(tmpdir(), 'xenos-bench-p2p-'));
const keyFile = join(root, 'swarm.key');
await createClusterKey(keyFile);
let dirs = 0;

async function startHost(bootstrap: string[]): Promise<Host> {
  const dataDir = join(root, `h${dirs++}`);
  const node = await openXenosNode({ dataDir, listen: '127.0.0.1:0', clusterKeyFile: keyFile, bootstrap });
  await node.start();
  const { privateKey } = await loadOrCreatePeerKey(join(dataDir, 'p2p.key'));
  const records = new RecordPublisher({ node, privateKey }, { dataDir });
  const discovery = new Discovery({ node, records });
  await discovery.start();
  return { node, records, discovery };
}

async function stopHost(h: Host): Promise<void> {
  await h.discovery.stop();
  await h.node.stop();
}

function p(values: number[], q: number): number {
  return percentile(sortedCopy(values), q * 100);
}

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const r = await fn();
  return [performance.now() - t, r];
}

function report(n: number, figure: string, values: number[] | number, path = ''): void {
  const value = Array.isArray(values) ? p(values, 0.5) : values;
  const extra = Array.isArray(values) ? ` (p95 ${p(values, 0.95).toFixed(1)}, n=${values.length})` : '';
  const target = TARGETS[figure](n);
  const ratio = value / target;
  const unit = figure.endsWith(' MB') ? 'MB' : 'ms';
  const note = `${path ? `${path}; ` : ''}${Array.isArray(values) ? `n=${values.length}, ` : ''}load ${loadavg()[0].toFixed(1)}`;
  recordFigure({ bench: 'p2p-discovery', name: `${n} nodes ${figure}`, value, unit, bound: target, note });
  console.log(
    `${String(n).padStart(3)} nodes  ${figure.padEnd(38)} ${value.toFixed(1).padStart(8)}${extra.padEnd(24)} target <= ${target}  ratio ${ratio.toFixed(2)}${ratio <= 1 ? '' : '  MISSED'}${path ? `  (${path})` : ''}`,
  );
}

async function run(n: number): Promise<void> {
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const seed = await startHost([]);
  const hosts = [seed];
  for (let i = 1; i < n; i++) hosts.push(await startHost(seed.node.multiaddrs));
  await Promise.all(hosts.map((h) => h.node.joined({ timeout: 60_000 })));
  await until(
    () => hosts.every((h) => h.node.connectedPeers().length >= Math.min(n - 1, 3)),
    30_000,
    'mesh',
    10,
  );
  // Let every node learn the others (routing tables fill from identify + self-queries).
  await Promise.all(hosts.map((h) => h.node.libp2p.services.dht.refreshRoutingTable()));
  global.gc?.();
  const rssPerNode = (process.memoryUsage().rss - rssBefore) / n / 1e6;

  const replicated: { obj: XObject; status: Record<string, unknown> }[] = [];
  const ready = [
    {
      type: 'Ready',
      status: 'True',
      reason: 'Bench',
      message: '',
      lastTransitionTime: new Date().toISOString(),
    },
  ];
  for (let i = 1; i <= PROVIDERS; i++) {
    const h = hosts[i];
    replicated.push(
      {
        obj: { apiVersion: 'xenos.io/v1alpha1', kind: 'Host', metadata: { name: `h${i}` }, spec: {} },
        status: { peerId: h.node.peerId.toString(), conditions: ready },
      },
      {
        obj: {
          apiVersion: 'xenos.io/v1alpha1',
          kind: 'ServiceInstance',
          metadata: { name: `web-${i}`, namespace: 'default' },
          spec: { templateRef: { name: 'web' }, host: `h${i}` },
        },
        status: {
          serviceType: 'web',
          phase: 'Running',
          endpoints: [{ name: 'http', address: `10.0.0.${i}`, port: 80 }],
          conditions: ready,
        },
      },
    );
    await h.discovery.publishStatus([
      {
        namespace: 'default',
        name: `web-${i}`,
        serviceType: 'web',
        endpoints: [`10.0.0.${i}:80`],
        ready: true,
      },
    ]);
    await h.discovery.advertise('web');
  }

  const cold: number[] = [];
  const coldApi: number[] = [];
  const answeredBy = { store: 0, dht: 0 };
  const coldFirst: number[] = [];
  const warm: number[] = [];
  const rounds = n <= 10 ? 15 : 10;
  for (let r = 0; r < rounds; r++) {
    for (const into of [cold, coldFirst]) {
      const c = await startHost(seed.node.multiaddrs);
      await c.node.joined({ timeout: 60_000 });
      const limit = into === coldFirst ? 1 : undefined;
      const [ms, found] = await time(() => c.discovery.discover('web', { limit }));
      if (found.length < (limit ?? PROVIDERS))
        throw new Error(`bench: cold discover found ${found.length} hosts`);
      into.push(ms);
      if (into === cold) {
        const [wms] = await time(() => c.discovery.discover('web'));
        warm.push(wms);
      }
      await stopHost(c);
    }
    // The discover API on a cold host: a fresh node whose store replication has filled, never asked before.
    const c = await startHost(seed.node.multiaddrs);
    await c.node.joined({ timeout: 60_000 });
    const store = openStore({ path: ':memory:', namespaced: (k) => k !== 'Host', writer: 'bench' });
    for (const { obj, status } of replicated) {
      const created = store.create(structuredClone(obj));
      store.update({ ...created, status } as XObject, { subresource: 'status' });
    }
    const liveness = new HostLiveness({ store, membership: () => undefined }, { self: 'bench' });
    liveness.start();
    const sources = {
      local: { store, isLive: (h: string) => liveness.isLive(h) },
      overlay: { discovery: c.discovery, node: c.node },
    };
    const [ams, answer] = await time(() => discover(sources, 'default', 'web'));
    if (answer.items.length < PROVIDERS) throw new Error(`bench: API discover found ${answer.items.length}`);
    coldApi.push(ams);
    answeredBy[answer.source]++;
    liveness.stop();
    store.close();
    await stopHost(c);
  }

  const puts: number[] = [];
  const gets: number[] = [];
  for (let r = 0; r < 20; r++) {
    const a = hosts[r % n];
    const b = hosts[(r + Math.floor(n / 2)) % n];
    const key = hostRecordKey(a.node.peerId.toString());
    const [pms] = await time(() => a.records.publishRecord('host', key, { round: r }));
    puts.push(pms);
    const [gms, got] = await time(() => b.records.fetchRecord<{ round: number }>(key));
    if (got.payload.round !== r)
      throw new Error(`bench: get returned round ${got.payload.round}, wanted ${r}`);
    gets.push(gms);
  }

  report(
    n,
    'discover cold p50 ms (API, auto)',
    coldApi,
    `answered by store ${answeredBy.store}, dht ${answeredBy.dht}`,
  );
  report(
    n,
    'discover cold p50 ms',
    cold,
    'path dht: Discovery.discover, provider records + signed host records',
  );
  report(n, 'discover cold first-endpoint p50 ms', coldFirst);
  report(n, 'discover warm p50 ms', warm);
  report(n, 'record put p50 ms', puts);
  report(n, 'record get p50 ms', gets);
  report(n, 'RSS per node MB', rssPerNode);
  await Promise.all(hosts.map(stopHost));
}

try {
  console.log(
    `p2p bench: Node ${process.version}, ${PROVIDERS} providers of "web", pnet + Noise + Yamux, loopback; load average ${loadavg()[0].toFixed(1)}`,
  );
  for (const n of sizes) await run(n);
} finally {
  await rm(root, { recursive: true, force: true });
}
