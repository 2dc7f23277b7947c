// Benchmark of membership on a cluster of REAL xenosd processes on this machine (src/local-cluster, plain
// HTTP, p2p over TCP loopback with the cluster key), default 10 hosts at the default --host-timeout 15s:
//  - idle: replicated rows per host per second while nothing changes (every row written or applied on a
//    host moves its store revision; bound: none — it should be 0; before membership it was one heartbeat row
//    per host every 3 s, 3.3 rows/s per host at 10 hosts);
//  - rows per write: the store revisions that move on all hosts together for one desired-state write
//    (a ServiceInstance no host fits), divided by the hosts (2 = each host applied that row and the
//    FailedScheduling event its placement owner records, nothing more);
//  - kill -9: a host killed (several in turn), timed until EVERY other host's Host object says Ready=False
//    (bound: --host-timeout + 1 s), and how many hosts wrote the verdict.
// Figures are printed with their bounds and the load average, and recorded for bench/run.ts.
//
//   node --disable-warning=ExperimentalWarning bench/membership-cluster.ts [hosts=10] [kills=3] [--host-timeout 15s] [--idle 30]

import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster, type LocalHost } from '../src/local-cluster/local-cluster.ts';
import { flag, positionalArgs } from './lib/args.ts';
import { printFigure } from './lib/figures.ts';
import { parkedInstance } from './lib/parked-instance.ts';
import { summarise } from './lib/stats.ts';
import { until } from './lib/wait.ts';

const positional = positionalArgs();
const n = Number(positional[0] ?? 10);
const kills = Number(positional[1] ?? 3);
const timeout = flag('--host-timeout', '15s');
const tauMs = Number(timeout.replace(/s$/, '')) * 1000;
const idleS = Number(flag('--idle', '30'));
const writes = 20;
const bench = 'membership-cluster';
const SI = '/apis/xenos.io/v1alpha1/namespaces/default/serviceinstances';
const W = 46;

async function call(h: LocalHost, path: string, init: RequestInit = {}): Promise<any> {
  const res = await fetch(h.apiUrl + path, {
    ...init,
    headers: { Authorization: `Bearer ${h.token}`, 'Content-Type': 'application/json', ...init.headers },
  });
  if (!res.ok)
    throw new Error(`${init.method ?? 'GET'} ${path} on ${h.name}: ${res.status} ${await res.text()}`);
  return res.json();
}

const revision = async (h: LocalHost) =>
  Number((await call(h, '/apis/xenos.io/v1alpha1/hosts')).metadata.resourceVersion);
const revisions = (hs: LocalHost[]) => Promise.all(hs.map(revision));
const ready = async (h: LocalHost, name: string) =>
  (await call(h, `/apis/xenos.io/v1alpha1/hosts/${name}`)).status?.conditions?.find(
    (c: { type: string }) => c.type === 'Ready',
  );

const dir = mkdtempSync(join(tmpdir(), 'xenos-bench-membership-'));
const cluster = new LocalCluster({ dir, hosts: n, tls: false, hostTimeout: timeout, log: () => {} });
try {
  const load0 = loadavg()[0].toFixed(1);
  await cluster.start();
  let live = [...cluster.hosts];
  // Settled: no revision moves for 3 s (start-up writes each host's facts once).
  let before = await revisions(live);
  await until(
    async () => {
      await new Promise((r) => setTimeout(r, 3000));
      const now = await revisions(live);
      const still = now.every((r, i) => r === before[i]);
      before = now;
      return still;
    },
    120_000,
    'the cluster to settle',
    0,
  );
  await new Promise((r) => setTimeout(r, idleS * 1000)); // the idle period measured
  const after = await revisions(live);
  const idleRows = after.reduce((a, r, i) => a + r - before[i], 0) / n / idleS;

  const w0 = await revisions(live);
  for (let k = 0; k < writes; k++) {
    const name = `parked-${k}`;
    await call(live[k % n], SI, {
      method: 'POST',
      body: JSON.stringify(parkedInstance(name)),
    });
    await until(
      async () =>
        (
          await Promise.all(
            live.map((h) =>
              call(h, `${SI}/${name}`).then(
                () => true,
                () => false,
              ),
            ),
          )
        ).every(Boolean),
      30_000,
      `${name} on every host`,
      20,
    );
  }
  await new Promise((r) => setTimeout(r, 3000)); // what the writes set off (events, retries) lands
  const w1 = await revisions(live);
  const rowsPerWrite = w1.reduce((a, r, i) => a + r - w0[i], 0) / writes / n;

  const detect: number[] = [];
  const markers: string[] = [];
  for (let k = 0; k < kills; k++) {
    const victim = live[live.length - 1 - k];
    const others = live.filter((h) => h !== victim);
    const t0 = performance.now();
    victim.child.kill('SIGKILL');
    await victim.exited;
    const seen = await Promise.all(
      others.map(async (h) => {
        await until(
          async () => (await ready(h, victim.name))?.status === 'False',
          tauMs + 30_000,
          `${victim.name} NotReady on ${h.name}`,
          50,
        );
        return performance.now() - t0;
      }),
    );
    detect.push(Math.max(...seen));
    const marker = /marked by (\S+)$/.exec((await ready(others[0], victim.name)).message)?.[1] ?? '?';
    markers.push(`${victim.name} by ${marker}`);
    live = others;
  }
  const load = `load ${load0} -> ${loadavg()[0].toFixed(1)}`;
  console.log(`\n${n} xenosd processes (real, one machine), --host-timeout ${timeout}; ${load}`);
  printFigure(
    {
      bench,
      name: `${n} hosts idle replicated rows per host`,
      value: idleRows,
      unit: 'rows/s',
      note: `over ${idleS} s; should be 0 (heartbeat rows: 1 per host per 3 s); ${load}`,
    },
    W,
  );
  printFigure(
    {
      bench,
      name: `${n} hosts rows applied per host per write`,
      value: rowsPerWrite,
      unit: 'rows',
      note: `${writes} writes of an instance no host fits: 2 = it and its FailedScheduling event`,
    },
    W,
  );
  const d = summarise(detect);
  printFigure(
    {
      bench,
      name: `${n} hosts kill -9 -> NotReady on every host (max)`,
      value: d.max,
      unit: 'ms',
      bound: tauMs + 1000,
      note: `${kills} kills, p50 ${d.p50.toFixed(0)} ms; marked: ${markers.join(', ')}; ${load}`,
    },
    W,
  );
} finally {
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
}
