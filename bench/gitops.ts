// Benchmark: GitOps on one real xenosd (`--watch site=DIR`, a git checkout of N ServiceInstances, the
// periodic sync set to a minute so that only chokidar and the API watch drive it). Measures:
//   - the first sync: xenosd started → all N objects applied (objects/s, held against the >= 100/s of
//     `xenosctl apply`'s create bound, bench/apply-1000.ts);
//   - a commit that changes a tenth of the files: commit → every change visible;
//   - drift repair: an object deleted by hand → back, over 20 trials (p50 and max, held against 2 s:
//     "within seconds");
//   - an idle minute's share: API requests the source sends in 10 s while nothing changes (bound 0).
//
//   node --no-warnings bench/gitops.ts [objects=300]

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeDataDir, startXenosd, type XenosdProcess } from '../test/daemon/xenosd-process.ts';
import { printFigure } from './lib/figures.ts';
import { summarise } from './lib/stats.ts';
import { until } from './lib/wait.ts';

const N = Number(process.argv[2] ?? 300);
const SI = '/apis/xenos.io/v1alpha1/namespaces/default/serviceinstances';
const BENCH = 'gitops';

const root = mkdtempSync(join(tmpdir(), 'bench-gitops-'));
const repo = join(root, 'site');
const git = (...args: string[]) =>
  execFileSync('git', ['-C', repo, '-c', 'user.name=bench', '-c', 'user.email=bench@example.org', ...args]);

function instance(i: number, version: string): string {
  return `apiVersion: xenos.io/v1alpha1
kind: ServiceInstance
metadata:
  name: site-${i}
  labels: { version: "${version}" }
spec:
  templateRef: { name: web }
  runStrategy: Halted
  hostSelector: { zone: nowhere }
`;
}

function writeAll(version: string, every = 1): void {
  for (let i = 0; i < N; i += every)
    writeFileSync(join(repo, 'apps', `site-${i}.yaml`), instance(i, version));
}

async function labelled(xd: XenosdProcess, version: string): Promise<number> {
  const res = await xd.api(`${SI}?labelSelector=version%3D${version}`);
  return ((await res.json()) as { items: unknown[] }).items.length;
}

/** API requests answered for resources (the bench's own /metrics scrapes are not resources). */
async function resourceRequests(xd: XenosdProcess): Promise<number> {
  const text = await (await xd.api('/metrics')).text();
  let n = 0;
  for (const m of text.matchAll(/^xenos_api_requests_total\{([^}]*)\} (\d+)/gm))
    if (!m[1].includes('resource=""')) n += Number(m[2]);
  return n;
}

mkdirSync(join(repo, 'apps'), { recursive: true });
git('init', '-q', '-b', 'main');
writeAll('1');
git('add', '-A');
git('commit', '-q', '-m', 'v1');
let xd: XenosdProcess | undefined;
try {
  const t0 = performance.now();
  xd = await startXenosd({ args: ['--watch', `site=${repo}`, '--watch-interval', '60s'] });
  const started = xd;
  await until(async () => (await labelled(started, '1')) === N, 120_000, `${N} objects applied`);
  const firstMs = performance.now() - t0;
  printFigure({
    bench: BENCH,
    name: 'first sync',
    value: N / (firstMs / 1000),
    unit: 'objects/s',
    bound: 100,
    boundKind: 'min',
    note: `${N} objects in ${Math.round(firstMs)} ms, xenosd start included`,
  });

  writeAll('2', 10);
  const t1 = performance.now();
  git('commit', '-q', '-am', 'v2');
  const changed = Math.ceil(N / 10);
  await until(async () => (await labelled(started, '2')) === changed, 60_000, 'the commit applied');
  printFigure({
    bench: BENCH,
    name: 'commit → applied',
    value: performance.now() - t1,
    unit: 'ms',
    note: `${changed} of ${N} files changed`,
  });

  const repairs: number[] = [];
  for (let k = 0; k < 20; k++) {
    const name = `site-${(k * 7) % N}`;
    const t = performance.now();
    await started.api(`${SI}/${name}`, { method: 'DELETE' });
    await until(async () => (await started.api(`${SI}/${name}`)).status === 200, 30_000, `${name} back`);
    repairs.push(performance.now() - t);
  }
  const r = summarise(repairs);
  printFigure({ bench: BENCH, name: 'drift repair p50', value: r.p50, unit: 'ms', bound: 2000 });
  printFigure({
    bench: BENCH,
    name: 'drift repair max',
    value: r.max,
    unit: 'ms',
    bound: 2000,
    note: '20 trials',
  });

  await new Promise((res) => setTimeout(res, 2000));
  const before = await resourceRequests(started);
  await new Promise((res) => setTimeout(res, 10_000));
  const idle = (await resourceRequests(started)) - before;
  printFigure({ bench: BENCH, name: 'requests in 10 s idle', value: idle, unit: 'requests', bound: 0 });
} finally {
  await xd?.stop();
  if (xd) removeDataDir(xd.dataDir);
  rmSync(root, { recursive: true, force: true });
}
