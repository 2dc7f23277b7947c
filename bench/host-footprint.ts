// Benchmark: what a host pays for running xenosd. (1) One idle xenosd (process driver, no p2p): RSS
// and CPU sampled from /proc over a window. (2) A cluster of real xenosd processes with --p2p (libp2p,
// DHT, membership, replication) on this machine, idle: RSS and CPU of each. (3) Memory per instance:
// RSS of xenosd and, separately, of the domains' processes (supervisor + service) with 0, 10, 20, ...
// running instances of the example web service, and the per-instance deltas.
// Bounds (issue 9): idle xenosd <= 100 MB RSS alone, <= 120 MB with --p2p, <= 1 % of a core. Beside
// each RSS figure: how much of it is the process's own memory (RssAnon: heap, code compiled from the
// sources, malloc) and how much the node binary's mapped pages (RssFile, shared with every node process
// on the machine). V8 flags for xenosd go in NODE_OPTIONS (inherited), e.g.
// NODE_OPTIONS=--max-semi-space-size=2; the figures say which were set.
//
// Idle is sampled after --warmup seconds: V8 frees the garbage of startup (compiling every module) some
// seconds after the work stops, and a daemon is idle for hours, not for its first seconds. The figures
// say which code xenosd ran: its build (dist/, see bin/code.js) or its TypeScript sources.
//
//   node bench/host-footprint.ts [--idle SECONDS=20] [--warmup SECONDS=10] [--counts 0,10,20] [--cluster-hosts 3] [--settle SECONDS=5]
//
// --cluster-hosts 0 skips the cluster part.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { codeFile } from '../bin/code.js';
import { XenosClient } from '../src/client/client.ts';
import { HOST } from '../src/model/kinds.ts';
import { removeDataDir, startXenosd, type XenosdProcess } from '../test/daemon/xenosd-process.ts';
import { printFigure } from './lib/figures.ts';
import { domainPids, sampleIdle, usageOf } from './lib/proc-footprint.ts';
import { until } from './lib/wait.ts';
import {
  applyWebTemplate,
  conditionStatus,
  deleteAllInstances,
  killLeftoverDomains,
  SERVICE_INSTANCE,
  webInstance,
} from './lib/web-service.ts';

const BENCH = 'host-footprint';
const NAMESPACE = 'bench';

const { values: flags } = parseArgs({
  options: {
    idle: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '10' },
    counts: { type: 'string', default: '0,10,20' },
    'cluster-hosts': { type: 'string', default: '3' },
    settle: { type: 'string', default: '5' },
  },
});
const idleMs = Number(flags.idle) * 1000;
const warmupMs = Number(flags.warmup) * 1000;
const counts = flags.counts.split(',').map(Number);
const clusterHosts = Number(flags['cluster-hosts']);
const settleMs = Number(flags.settle) * 1000;
const load = () => loadavg()[0].toFixed(2);
const nodeOptions = `${process.env.NODE_OPTIONS ? `NODE_OPTIONS=${process.env.NODE_OPTIONS}` : 'no V8 flags'}, code: ${
  codeFile('src/daemon/main.ts').includes('/dist/') ? 'dist' : 'sources'
}`;
const BOUND = { rss: 100, p2pRss: 120, cpu: 1 };

/** Resident memory of `pid` split as /proc reports it: anonymous (its own) and file-backed (the binary). */
function rssSplit(pid: number): { anonMB: number; fileMB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { anonMB: kb('RssAnon') / 1024, fileMB: kb('RssFile') / 1024 };
}

function pidOf(xd: XenosdProcess): number {
  if (!xd.child.pid) throw new Error(`${BENCH}: xenosd has no pid (did it start?)`);
  return xd.child.pid;
}

/** (1) and (3) on one xenosd. */
async function singleHost(): Promise<void> {
  const xd = await startXenosd({ hostName: 'bench', args: ['--driver', 'process'] });
  const client = new XenosClient({ server: xd.url, token: xd.token, timeoutMs: 60_000 });
  const pid = pidOf(xd);
  let cleaned = false;
  try {
    await sleep(warmupMs);
    const idle = await sampleIdle(() => [pid], { durationMs: idleMs });
    console.log(
      `${BENCH}: one xenosd (process driver, no p2p), idle for ${idle.seconds.toFixed(0)} s after ${warmupMs / 1000} s of warm-up; load average ${load()}`,
    );
    const split = rssSplit(pid);
    const note = `${idle.seconds.toFixed(0)} s idle, load ${load()}, ${nodeOptions}`;
    printFigure({
      bench: BENCH,
      name: 'xenosd idle RSS (mean)',
      value: idle.rssMeanMB,
      unit: 'MB',
      bound: BOUND.rss,
      note: `${note}; anon ${split.anonMB.toFixed(0)} MB + node binary ${split.fileMB.toFixed(0)} MB`,
    });
    printFigure({
      bench: BENCH,
      name: 'xenosd idle CPU',
      value: idle.cpuPercent,
      unit: '% of a core',
      bound: BOUND.cpu,
      note,
    });

    await applyWebTemplate(client, NAMESPACE, { periodSeconds: 1 });
    console.log(
      `${BENCH}: memory per instance of the web service (a node HTTP server; health check every 1 s), ` +
        `each count held ${settleMs / 1000} s once all are Ready`,
    );
    const rows: { count: number; xenosdMB: number; domainsMB: number; cpu: number; procs: number }[] = [];
    let created = 0;
    for (const count of counts) {
      for (; created < count; created++) {
        const name = `web-${String(created).padStart(3, '0')}`;
        await client.create(SERVICE_INSTANCE, webInstance(NAMESPACE, name), { namespace: NAMESPACE });
      }
      await until(
        async () => {
          const list = await client.list(SERVICE_INSTANCE, { namespace: NAMESPACE });
          return list.items.filter((i) => conditionStatus(i, 'Ready') === 'True').length === count;
        },
        120_000 + count * 5_000,
        `${count} instances Ready`,
        200,
      );
      const domains = await domainPids(xd.dataDir);
      const own = await sampleIdle(() => [pid], { durationMs: settleMs });
      const dom = await usageOf(domains);
      rows.push({
        count,
        xenosdMB: own.rssMeanMB,
        domainsMB: dom.rssBytes / (1024 * 1024),
        cpu: own.cpuPercent,
        procs: dom.alive,
      });
      console.log(
        `  ${String(count).padStart(3)} instances: xenosd RSS ${own.rssMeanMB.toFixed(1)} MB, CPU ${own.cpuPercent.toFixed(1)}% of a core; ` +
          `domains ${dom.alive} processes, RSS ${(dom.rssBytes / (1024 * 1024)).toFixed(1)} MB`,
      );
    }
    const first = rows[0];
    const last = rows[rows.length - 1];
    if (last.count > first.count) {
      const k = last.count - first.count;
      const note = `${first.count} → ${last.count} instances, load ${load()}`;
      printFigure({
        bench: BENCH,
        name: 'xenosd RSS per instance',
        value: (last.xenosdMB - first.xenosdMB) / k,
        unit: 'MB',
        note,
      });
      printFigure({
        bench: BENCH,
        name: 'domain RSS per instance',
        value: (last.domainsMB - first.domainsMB) / k,
        unit: 'MB',
        note: `${note}; supervisor sh + node server`,
      });
      printFigure({
        bench: BENCH,
        name: `xenosd CPU at ${last.count} instances`,
        value: last.cpu,
        unit: '% of a core',
        note: `health checks every 1 s, load ${load()}`,
      });
    }
    await deleteAllInstances(client, NAMESPACE, xd.dataDir);
    cleaned = true;
  } finally {
    if (!cleaned) {
      await deleteAllInstances(client, NAMESPACE, xd.dataDir).catch(async (err) => {
        console.error(
          `${BENCH}: clean-up failed (${err.message}); killed ${await killLeftoverDomains(xd.dataDir)}`,
        );
      });
    }
    client.close();
    await xd.stop();
    removeDataDir(xd.dataDir);
  }
}

/** (2): a cluster of real xenosd with --p2p, idle (started here: test/cluster's harness needs vitest). */
async function cluster(n: number): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'xenos-footprint-'));
  const keyFile = join(root, 'swarm.key');
  const hosts: (XenosdProcess & { name: string })[] = [];
  const start = async (name: string, join_: string[]) => {
    const args = [
      '--driver',
      'process',
      '--p2p',
      '127.0.0.1:0',
      '--cluster-key',
      keyFile,
      '--host-timeout',
      '15s',
    ];
    const xd = await startXenosd({
      hostName: name,
      args: [...args, ...join_.flatMap((a) => ['--join', a])],
      timeoutMs: 90_000, // a loaded machine: joining checks the name with a peer first
    });
    hosts.push(Object.assign(xd, { name }));
    return readFileSync(join(xd.dataDir, 'p2p.addrs'), 'utf8').trim().split('\n');
  };
  try {
    const seed = await start('h0', []);
    for (let i = 1; i < n; i++) await start(`h${i}`, seed);
    // Idle once every host sees every Host object (joined, replicated, membership running).
    await until(
      async () => {
        const counts = await Promise.all(
          hosts.map(async (h) => {
            const c = new XenosClient({ server: h.url, token: h.token, timeoutMs: 10_000 });
            try {
              return (await c.list(HOST)).items.length;
            } finally {
              c.close();
            }
          }),
        );
        return counts.every((k) => k === n);
      },
      60_000,
      `every host sees ${n} Host objects`,
      200,
    );
    await sleep(warmupMs);
    const samples = await Promise.all(hosts.map((h) => sampleIdle(() => [pidOf(h)], { durationMs: idleMs })));
    console.log(
      `${BENCH}: ${n} xenosd with --p2p (libp2p, DHT, membership, replication) on this machine, all seeing ` +
        `${n} Host objects, idle for ${samples[0].seconds.toFixed(0)} s after ${warmupMs / 1000} s of warm-up; load average ${load()}`,
    );
    const splits = hosts.map((h) => rssSplit(pidOf(h)));
    for (const [i, s] of samples.entries()) {
      console.log(
        `  ${hosts[i].name}: RSS mean ${s.rssMeanMB.toFixed(1)} MB (max ${s.rssMaxMB.toFixed(1)}; anon ${splits[i].anonMB.toFixed(0)} + node binary ${splits[i].fileMB.toFixed(0)}), CPU ${s.cpuPercent.toFixed(2)}% of a core`,
      );
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const note = `${n} hosts, mean over hosts, load ${load()}, ${nodeOptions}`;
    printFigure({
      bench: BENCH,
      name: 'p2p xenosd idle RSS',
      value: mean(samples.map((s) => s.rssMeanMB)),
      unit: 'MB',
      bound: BOUND.p2pRss,
      note: `${note}; anon ${mean(splits.map((x) => x.anonMB)).toFixed(0)} MB + node binary ${mean(splits.map((x) => x.fileMB)).toFixed(0)} MB`,
    });
    printFigure({
      bench: BENCH,
      name: 'p2p xenosd idle CPU',
      value: mean(samples.map((s) => s.cpuPercent)),
      unit: '% of a core',
      bound: BOUND.cpu,
      note,
    });
  } finally {
    for (const h of hosts) {
      await h.stop();
      removeDataDir(h.dataDir);
    }
    rmSync(root, { recursive: true, force: true });
  }
}

await singleHost();
if (clusterHosts > 0) await cluster(clusterHosts);
