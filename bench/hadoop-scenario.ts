// Benchmark of the paper's scenario (manifests/hadoop, process driver) on real xenosd processes: a
// MapReduce master and `perHost` workers per host on `hosts` hosts, for each density in --densities (the
// paper's VM1, VM2 and VM4 clusters, its Figures 5–7): the time of a π job (the PiEstimator) and of a word
// count, each through image/job.mjs as a user runs it, against the same job computed in one process in
// the same run (the sequential baseline: ratio = 1 / speedup). Then the failover: a π job with the
// master's host killed mid-job (xenosd and its domains, kill -9), timed kill → the master Ready on
// another host (held against 10 s + the start: re-bound → Ready, same run) and the job's total against
// the same job without a failure plus that failover target. On 2 cores, more workers per host add processes, not compute: read the
// densities as the cost of packing, next to the load average.
//
//   node bench/hadoop-scenario.ts [--hosts 4] [--densities 1,2,4] [--maps 32] [--samples 10000000]
//                                 [--text-copies 4000]

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error: the scenario's own JavaScript module (no types), the code the workers run
import { runLocally } from '../manifests/hadoop/image/mapreduce.mjs';
import { LocalCluster } from '../src/local-cluster/local-cluster.ts';
import type { ServiceInstance } from '../src/model/service-instance.ts';
import { copyHadoopManifests, HADOOP, mapsDone, runJob } from '../test/cluster/hadoop-job.ts';
import { killHost } from '../test/cluster/kill-host.ts';
import { flag } from './lib/args.ts';
import { printFigure } from './lib/figures.ts';
import { loadText } from './lib/load.ts';
import { until } from './lib/wait.ts';

const BENCH = 'hadoop-scenario';
const hostCount = Number(flag('--hosts', '4'));
const densities = flag('--densities', '1,2,4').split(',').map(Number);
const maps = Number(flag('--maps', '32'));
const samples = Number(flag('--samples', '10000000'));
/** The word count's input: this many copies of manifests/hadoop/input/hosting.txt (about 1 kB each). */
const copies = Number(flag('--text-copies', '4000'));
const DOWN_S = 5;
const load = loadText;

const root = mkdtempSync(join(tmpdir(), 'xenos-bench-hadoop-'));
const text = Array.from({ length: copies }, () =>
  readFileSync(join(HADOOP, 'input', 'hosting.txt'), 'utf8'),
).join('\n');
const corpus = join(root, 'corpus.txt');
writeFileSync(corpus, text);
const PI = { type: 'pi', maps, samples };
const WC = { type: 'wordcount', maps: 16, text };
const piArgs = ['pi', '--maps', String(maps), '--samples', String(samples), '--timeout', '600'];
const wcArgs = ['wordcount', '--maps', '16', corpus, '--timeout', '600'];

/** Seconds the same job takes computed in this process (no cluster). */
function sequential(spec: object): number {
  const started = Date.now();
  runLocally(spec);
  return (Date.now() - started) / 1000;
}

const cluster = new LocalCluster({
  dir: join(root, 'cluster'),
  hosts: hostCount,
  hostTimeout: '2s',
  tls: false,
});
const isReady = (i: ServiceInstance) =>
  i.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const scenario = (all: ServiceInstance[]) =>
  all.filter((i) => i.metadata.namespace === 'hadoop' && !i.metadata.deletionTimestamp);

async function job(args: string[], onProgress?: (stderr: string) => void) {
  // The first host: never the one killed (the others joined through it; the master is moved off it first).
  const api = cluster.hosts[0];
  const r = await runJob({ url: api.apiUrl, token: api.token }, args, onProgress).done;
  if (r.code !== 0) throw new Error(`job.mjs ${args.join(' ')}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as { seconds: number; recovered: number; masters: string[]; result: unknown };
}

const piSequential = sequential(PI);
const wcSequential = sequential(WC);
const loadBefore = load();
const lines: string[] = [];
let failover: { back: number; start: number; withKill: number; without: number } | undefined;
try {
  await cluster.start();
  const first = cluster.hosts[0];
  for (const perHost of densities) {
    const replicas = perHost * hostCount;
    const dir = join(root, `vm${perHost}`);
    copyHadoopManifests(dir, { replicas, maxPerHost: perHost, hostDownSeconds: DOWN_S });
    await cluster.ctl(['apply', '-f', dir]);
    await until(
      async () => {
        const l = scenario(await cluster.instances(first));
        return l.length === replicas + 1 && l.every(isReady);
      },
      180_000,
      `the master and ${replicas} workers Ready`,
    );
    const pi = await job(piArgs);
    const wc = await job(wcArgs);
    lines.push(
      `  ${perHost} per host (${replicas} workers): pi ${pi.seconds} s, wordcount ${wc.seconds} s; load ${load()}`,
    );
    console.log(lines.at(-1));
    const note = `${replicas} workers on ${hostCount} hosts; load ${load()}`;
    printFigure(
      {
        bench: BENCH,
        name: `pi job, ${perHost}/host`,
        value: pi.seconds * 1000,
        unit: 'ms',
        bound: piSequential * 1000,
        note: `${note}; bound: the same job in one process`,
      },
      36,
    );
    printFigure(
      {
        bench: BENCH,
        name: `wordcount job, ${perHost}/host`,
        value: wc.seconds * 1000,
        unit: 'ms',
        bound: wcSequential * 1000,
        note: `${note}; bound: the same job in one process`,
      },
      36,
    );

    if (perHost === densities[densities.length - 1]) {
      // The failover: the same π job, the master's host killed once a few maps are done.
      const masterNow = async () =>
        (await cluster.instances(first)).find((i) => i.metadata.name === 'hadoop-master')!;
      if ((await masterNow()).spec!.host === first.name) {
        // Never kill the first host: move the master off it first (a cold move, the process driver's).
        await cluster.ctl(['migrate', '-n', 'hadoop', 'hadoop-master', cluster.hosts[1].name, '--wait']);
        await until(async () => isReady(await masterNow()), 60_000, 'the master Ready after its move');
      }
      const masterHost = (await masterNow()).spec!.host;
      const victim = cluster.hosts.find((h) => h.name === masterHost)!;
      let killedAt = 0;
      let killing: Promise<void> | undefined;
      // One sample more: another job (its id is a digest of the job), not the one this master finished.
      const failoverArgs = [
        'pi',
        '--maps',
        String(maps),
        '--samples',
        String(samples + 1),
        '--timeout',
        '600',
      ];
      const withKill = job(failoverArgs, (stderr) => {
        if (!killing && mapsDone(stderr) >= 4) {
          killedAt = Date.now();
          killing = killHost(victim);
        }
      });
      const observer = cluster.hosts.find((h) => h !== victim)!;
      const back = await until(
        async () => {
          const m = (await cluster.instances(observer)).find((i) => i.metadata.name === 'hadoop-master');
          return killedAt && m && m.spec?.host !== victim.name && isReady(m)
            ? { at: Date.now(), m }
            : undefined;
        },
        120_000,
        'the master Ready on another host',
      );
      const rebound = Date.parse(
        back.m.metadata.annotations?.['xenos.io/failed-over-from']?.split(' ')[1] ?? '',
      );
      const done = await withKill;
      await killing;
      failover = {
        back: back.at - killedAt,
        start: back.at - rebound,
        withKill: done.seconds,
        without: pi.seconds,
      };
      console.log(
        `  failover: killed ${victim.name} (the master's host); ${done.recovered} maps recovered from workers`,
      );
      // Back on its data dir (its stale copies are fenced), so the cluster is whole for the cleanup.
      await cluster.addHost(victim.name);
      await cluster.waitHostsReady(
        cluster.hosts.filter((h) => h.child.exitCode === null && h.child.signalCode === null),
      );
    }
    await cluster.ctl(['delete', '-f', dir]);
    await until(
      async () => scenario(await cluster.instances(first)).length === 0,
      120_000,
      'the scenario deleted',
    );
  }
} finally {
  await cluster.stop();
  rmSync(root, { recursive: true, force: true });
}

console.log(
  `\n${BENCH}: ${hostCount} hosts; pi ${maps} maps × ${samples} samples (${piSequential} s in one process), wordcount 16 maps of ${text.length} bytes (${wcSequential} s); load ${loadBefore} → ${load()}`,
);
for (const l of lines) console.log(l);
if (failover) {
  const bound = 10_000 + failover.start;
  printFigure(
    {
      bench: BENCH,
      name: 'kill → master Ready elsewhere',
      value: failover.back,
      unit: 'ms',
      bound,
      note: `target 10 s + the start (${failover.start} ms); hostDownSeconds ${DOWN_S}`,
    },
    36,
  );
  printFigure(
    {
      bench: BENCH,
      name: 'pi job with the master killed',
      value: failover.withKill * 1000,
      unit: 'ms',
      bound: failover.without * 1000 + bound,
      note: `bound: the same job without a failure (${Math.round(failover.without * 1000)} ms) + the failover target`,
    },
    36,
  );
}
