// Benchmark: apply → Ready for many ServiceInstances on ONE real xenosd (process driver, template
// already cached). The example web template (manifests/web: a tiny node HTTP server with an http
// health check) is applied and waited for until Ready; then N instances are created at once through
// the API. Each instance is timed from the return of its create call to the first watch event that
// shows its Ready=True condition (and, to see where the time goes, to the first with DomainRunning=True).
// The stages of each instance come from the watch (placed, DomainRunning=True, Ready=True) and from the
// Events xenosd recorded (Created: its files prepared; Started: its supervisor spawned; Ready: the first
// health check that passed), so the bench shows where the time goes.
// The baseline, in the same run: the same N service processes started directly, no Xenos (the same
// command, the same port allocation, all at once; lib/direct-start.ts), each timed from its spawn to its
// first HTTP answer — once before the instances and once after them, to bracket the load of the machine.
// Prints p50/p99/max next to the bounds — p99 <= 1 s, and p99 <= 1.2 × the baseline's p99 (the mean of
// its two rounds) — with the ratios and the time for all N. Cleans up: deletes every instance, waits
// until its processes are gone, stops xenosd.
//
//   node bench/instances-ready.ts [--instances 100] [--period SECONDS] [--timeout SECONDS] [--no-baseline]
//
// --period overrides the template's health-check periodSeconds (manifests/web says 5). Each instance
// is a node process (~45 MB RSS), so N=100 is about 4.5 GB and ~100 node start-ups on this machine.

import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { XenosClient } from '../src/client/client.ts';
import { EVENT } from '../src/model/kinds.ts';
import type { ServiceInstance } from '../src/model/service-instance.ts';
import { removeDataDir, startXenosd } from '../test/daemon/xenosd-process.ts';
import { startDirect } from './lib/direct-start.ts';
import { printFigure } from './lib/figures.ts';
import { type Summary, summarise } from './lib/stats.ts';
import { until } from './lib/wait.ts';
import {
  applyWebTemplate,
  conditionStatus,
  deleteAllInstances,
  killLeftoverDomains,
  SERVICE_INSTANCE,
  webInstance,
  whyNotReady,
} from './lib/web-service.ts';

const BENCH = 'instances-ready';
const BOUND_P99_MS = 1000;
/** Xenos's p99 may be at most this many times the baseline's. */
const BOUND_BASELINE_RATIO = 1.2;
const NAMESPACE = 'bench';

const { values: flags } = parseArgs({
  options: {
    instances: { type: 'string', default: '100' },
    period: { type: 'string' },
    timeout: { type: 'string', default: '300' },
    'no-baseline': { type: 'boolean', default: false },
  },
});
const withBaseline = !flags['no-baseline'];
const n = Number(flags.instances);
const periodSeconds = flags.period === undefined ? undefined : Number(flags.period);
const timeoutMs = Number(flags.timeout) * 1000;

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** One baseline round: N direct starts, their summary, the load after; the processes stopped again. */
async function baselineRound(label: string): Promise<Summary> {
  const direct = await startDirect(n, { timeoutMs });
  await direct.stop();
  const s = summarise(direct.readyMs);
  console.log(
    `  baseline (${label}): ${n} \`node server.mjs\` started directly   p50 ${s.p50.toFixed(0)} ms   p99 ${s.p99.toFixed(0)} ms   max ${s.max.toFixed(0)} ms   (n=${s.n}; load ${load()})`,
  );
  for (const f of direct.failed.slice(0, 5)) console.log(`    failed: ${f}`);
  return s;
}

const xd = await startXenosd({ hostName: 'bench', args: ['--driver', 'process'] });
const client = new XenosClient({ server: xd.url, token: xd.token, timeoutMs: 60_000 });
const watching = new AbortController();
let cleaned = false;
let results: { r: Summary; note: string } | undefined;
try {
  const loadBefore = load();
  const templateMs = await applyWebTemplate(client, NAMESPACE, { periodSeconds });
  const baselineBefore = withBaseline ? await baselineRound('before') : undefined;

  // Watch from the list's resourceVersion, so no event of the instances is missed. Each stage's time is
  // that of the first event that shows it: placed (spec.host set), DomainRunning=True, Ready=True.
  const stages: Record<string, (i: ServiceInstance) => boolean> = {
    placed: (i) => Boolean(i.spec?.host),
    DomainRunning: (i) => conditionStatus(i, 'DomainRunning') === 'True',
    Ready: (i) => conditionStatus(i, 'Ready') === 'True',
  };
  const seen: Record<string, Map<string, number>> = {};
  for (const stage of Object.keys(stages)) seen[stage] = new Map();
  const createdAt = new Map<string, number>();
  /** The same moments on the wall clock, to compare with the Events' timestamps. */
  const createdAtWall = new Map<string, number>();
  const start = await client.list(SERVICE_INSTANCE, { namespace: NAMESPACE });
  const watchDone = (async () => {
    for await (const ev of client.watch(SERVICE_INSTANCE, {
      namespace: NAMESPACE,
      resourceVersion: start.metadata.resourceVersion,
      signal: watching.signal,
    })) {
      const now = performance.now();
      if (ev.type === 'BOOKMARK' || ev.type === 'DELETED') continue;
      const name = ev.object.metadata.name;
      for (const [stage, reached] of Object.entries(stages)) {
        if (!seen[stage].has(name) && reached(ev.object)) seen[stage].set(name, now);
      }
    }
  })().catch((err) => {
    if (!watching.signal.aborted) console.error(`${BENCH}: the watch failed: ${err}`);
  });
  const readyAt = seen.Ready;

  const names = Array.from({ length: n }, (_, i) => `web-${String(i).padStart(3, '0')}`);
  const createMs: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    names.map(async (name) => {
      const c0 = performance.now();
      await client.create(SERVICE_INSTANCE, webInstance(NAMESPACE, name), { namespace: NAMESPACE });
      const now = performance.now();
      createdAt.set(name, now);
      createdAtWall.set(name, Date.now());
      createMs.push(now - c0);
    }),
  );
  const allCreatedMs = performance.now() - t0;
  let notReady: string[] = [];
  try {
    await until(() => readyAt.size === n, timeoutMs, `all ${n} instances Ready`, 50);
  } catch {
    notReady = await whyNotReady(client, NAMESPACE);
  }
  const allReadyMs = Math.max(...readyAt.values()) - t0;
  const loadAfter = load();
  // Where the time went inside xenosd: create → each Event, from the Events' own timestamps.
  const events = await client.list(EVENT, { namespace: NAMESPACE });
  const eventAt = (reason: string) => {
    const out = new Map<string, number>();
    for (const e of events.items) {
      const name = e.involvedObject.name;
      if (e.reason !== reason || !createdAtWall.has(name)) continue;
      out.set(name, Date.parse(e.firstTimestamp ?? '') - createdAtWall.get(name)!);
    }
    return summarise([...out.values()].filter(Number.isFinite));
  };

  /** Per instance that reached both: time of stage `to` minus time of stage `from` (or of the create). */
  const between = (from: string | undefined, to: string) =>
    summarise(
      names
        .filter((x) => seen[to].has(x) && (from === undefined || seen[from].has(x)))
        .map((x) => seen[to].get(x)! - (from === undefined ? createdAt.get(x)! : seen[from].get(x)!)),
    );
  const r = between(undefined, 'Ready');
  const c = summarise(createMs);
  const period = periodSeconds ?? 5;
  console.log(
    `${BENCH}: ${n} ServiceInstances created at once on one xenosd (process driver) at ${xd.url}; ` +
      `health check http every ${period} s; load average before ${loadBefore}, after ${loadAfter}`,
  );
  console.log(`  template web Ready (image imported) in ${templateMs.toFixed(0)} ms, before the instances`);
  console.log(
    `  create calls               p50 ${c.p50.toFixed(0)} ms   p99 ${c.p99.toFixed(0)} ms   all ${n} returned after ${allCreatedMs.toFixed(0)} ms`,
  );
  const line = (label: string, s: ReturnType<typeof summarise>) =>
    console.log(
      `  ${label.padEnd(26)} p50 ${s.p50.toFixed(0)} ms   p99 ${s.p99.toFixed(0)} ms   max ${s.max.toFixed(0)} ms   (n=${s.n})`,
    );
  line('create → placed', between(undefined, 'placed'));
  line('create → Created (prepared)', eventAt('Created'));
  line('create → Started (spawned)', eventAt('Started'));
  line('create → Ready (probe ok)', eventAt('Ready'));
  line('placed → DomainRunning', between('placed', 'DomainRunning'));
  line('DomainRunning → Ready', between('DomainRunning', 'Ready'));
  line('create → Ready', r);
  const note = `N=${n}, period ${period} s, load ${loadAfter.split(' ')[0]}`;
  printFigure({ bench: BENCH, name: 'apply → Ready p50', value: r.p50, unit: 'ms', note });
  printFigure({
    bench: BENCH,
    name: 'apply → Ready p99',
    value: r.p99,
    unit: 'ms',
    bound: BOUND_P99_MS,
    note,
  });
  printFigure({ bench: BENCH, name: 'apply → Ready max', value: r.max, unit: 'ms', note });
  printFigure({ bench: BENCH, name: `all ${n} Ready`, value: allReadyMs, unit: 'ms', note });
  results = { r, note };
  if (notReady.length) {
    console.log(`  NOT all Ready within ${timeoutMs / 1000} s; some of those that were not:`);
    for (const line of notReady) console.log(`    ${line}`);
    process.exitCode = 1;
  }

  watching.abort();
  await watchDone;
  const cleanupMs = await deleteAllInstances(client, NAMESPACE, xd.dataDir);
  cleaned = true;
  console.log(
    `  clean-up: all ${n} instances deleted and their processes gone in ${cleanupMs.toFixed(0)} ms`,
  );
  if (baselineBefore) {
    const after = await baselineRound('after');
    const baseP99 = (baselineBefore.p99 + after.p99) / 2;
    const baseNote = `N=${n}; baseline p99 ${baselineBefore.p99.toFixed(0)} ms before, ${after.p99.toFixed(0)} ms after; load ${load().split(' ')[0]}`;
    printFigure({
      bench: BENCH,
      name: 'baseline (direct) p50',
      value: (baselineBefore.p50 + after.p50) / 2,
      unit: 'ms',
      note: baseNote,
    });
    printFigure({ bench: BENCH, name: 'baseline (direct) p99', value: baseP99, unit: 'ms', note: baseNote });
    printFigure({
      bench: BENCH,
      name: 'apply → Ready p99 vs baseline',
      value: results!.r.p99,
      unit: 'ms',
      bound: Math.round(BOUND_BASELINE_RATIO * baseP99),
      note: `${BOUND_BASELINE_RATIO} × baseline p99; Xenos / baseline = ${(results!.r.p99 / baseP99).toFixed(2)}; ${results!.note}`,
    });
  }
} finally {
  watching.abort();
  if (!cleaned) {
    await deleteAllInstances(client, NAMESPACE, xd.dataDir).catch(async (err) => {
      console.error(
        `${BENCH}: clean-up failed (${err.message}); killed ${await killLeftoverDomains(xd.dataDir)} processes`,
      );
    });
  }
  client.close();
  await xd.stop();
  removeDataDir(xd.dataDir);
}
