// Benchmark: mutating API calls against a real xenosd process over HTTP on loopback, first from one
// client at a time, then from 16 clients at once, in the same run against the same daemon. Every call
// is answered only after the store's durable write (group commit lets concurrent writes share one).
// Phase 1 (one client): create (POST), merge patch (PATCH), status (PATCH /status), delete — p50/p99
// each, bound p99 <= 50 ms. Phase 2 (16 clients): creates, patches and deletes of `objects` more
// instances — each op's rate and p99, bound >= 1,000 creates/s and create p99 <= 50 ms. The objects
// are ServiceInstances, so placement and the controllers do their real work on each create. Prints
// the load average beside each figure.
//
//   node --no-warnings bench/api-latency.ts [objects=300] [concurrent objects=2000] [--cpu-prof DIR]
//
// --cpu-prof DIR: xenosd writes a V8 CPU profile of its whole run into DIR (open it in Chrome DevTools).

import { loadavg } from 'node:os';
import { removeDataDir, startXenosd, type XenosdProcess } from '../test/daemon/xenosd-process.ts';
import { recordFigure } from './lib/figures.ts';
import { percentile, sortedCopy } from './lib/stats.ts';

const BOUND_P99_MS = 50;
const BOUND_CREATES_PER_S = 1000;
const CLIENTS = 16;
const args = process.argv.slice(2);
const profIndex = args.indexOf('--cpu-prof');
const profDir = profIndex >= 0 ? args.splice(profIndex, 2)[1] : undefined;
const objects = Number(args[0] ?? 300);
const concurrentObjects = Number(args[1] ?? 2000);
const BASE = '/apis/xenos.io/v1alpha1/namespaces/bench/serviceinstances';
const MERGE = 'application/merge-patch+json';
const load = () => loadavg()[0].toFixed(1);

const instance = (name: string, i: number) => ({
  apiVersion: 'xenos.io/v1alpha1',
  kind: 'ServiceInstance',
  metadata: { name, labels: { app: 'web' } },
  spec: { templateRef: { name: 'web' }, parameters: { index: String(i) } },
});

/** One call; its latency in ms. Throws on a non-2xx answer. */
async function call(
  xd: XenosdProcess,
  method: string,
  path: string,
  body?: unknown,
  type = 'application/json',
) {
  const t0 = performance.now();
  const res = await xd.api(path, {
    method,
    headers: { 'Content-Type': type },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
  return ms;
}

const fmt = (l: number[]) => {
  const s = sortedCopy(l);
  return `p50 ${percentile(s, 50).toFixed(2)} ms   p99 ${percentile(s, 99).toFixed(2)} ms`;
};

async function oneClient(xd: XenosdProcess): Promise<void> {
  const latencies: Record<string, number[]> = { create: [], patch: [], status: [], delete: [] };
  const loadBefore = load();
  for (let i = 0; i < objects; i++) {
    const name = `one-${i}`;
    latencies.create.push(await call(xd, 'POST', BASE, instance(name, i)));
    latencies.patch.push(await call(xd, 'PATCH', `${BASE}/${name}`, { spec: { host: `h${i % 4}` } }, MERGE));
    latencies.status.push(
      await call(xd, 'PATCH', `${BASE}/${name}/status`, { status: { phase: 'Running' } }, MERGE),
    );
  }
  for (let i = 0; i < objects; i++) latencies.delete.push(await call(xd, 'DELETE', `${BASE}/one-${i}`));
  const all = sortedCopy(Object.values(latencies).flat());
  const p99 = percentile(all, 99);
  console.log(`1 client: ${all.length} mutating calls, one at a time (load ${loadBefore} -> ${load()})`);
  for (const [op, l] of Object.entries(latencies)) console.log(`  ${op.padEnd(7)} ${fmt(l)}`);
  console.log(
    `  all     ${fmt(all)}   bound p99 <= ${BOUND_P99_MS} ms: ratio ${(p99 / BOUND_P99_MS).toFixed(2)}`,
  );
  const bench = 'api-latency';
  const note = `1 client, load ${load()}`;
  recordFigure({ bench, name: '1 client: call p50', value: percentile(all, 50), unit: 'ms', note });
  recordFigure({ bench, name: '1 client: call p99', value: p99, unit: 'ms', bound: BOUND_P99_MS, note });
}

/** `CLIENTS` clients, each taking the next index until `concurrentObjects` are done. */
async function concurrently(
  op: (i: number) => Promise<number>,
): Promise<{ perSecond: number; latencies: number[] }> {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let i = next++; i < concurrentObjects; i = next++) latencies.push(await op(i));
    }),
  );
  return { perSecond: concurrentObjects / ((performance.now() - t0) / 1000), latencies };
}

async function manyClients(xd: XenosdProcess): Promise<void> {
  const loadBefore = load();
  const phases = {
    create: await concurrently((i) => call(xd, 'POST', BASE, instance(`many-${i}`, i))),
    patch: await concurrently((i) =>
      call(xd, 'PATCH', `${BASE}/many-${i}`, { metadata: { labels: { round: '2' } } }, MERGE),
    ),
    delete: await concurrently((i) => call(xd, 'DELETE', `${BASE}/many-${i}`)),
  };
  const loadAfter = load();
  console.log(
    `${CLIENTS} clients: ${concurrentObjects} objects created, patched, deleted (load ${loadBefore} -> ${loadAfter})`,
  );
  for (const [op, r] of Object.entries(phases))
    console.log(`  ${op.padEnd(7)} ${r.perSecond.toFixed(0).padStart(5)}/s   ${fmt(r.latencies)}`);
  const creates = phases.create;
  const p99 = percentile(sortedCopy(creates.latencies), 99);
  console.log(
    `  bound   creates >= ${BOUND_CREATES_PER_S}/s: ratio ${(creates.perSecond / BOUND_CREATES_PER_S).toFixed(2)}; ` +
      `create p99 <= ${BOUND_P99_MS} ms: ratio ${(p99 / BOUND_P99_MS).toFixed(2)}`,
  );
  const bench = 'api-latency';
  const note = `${CLIENTS} clients, load ${loadBefore} -> ${loadAfter}`;
  recordFigure({
    bench,
    name: `${CLIENTS} clients: creates/s`,
    value: creates.perSecond,
    unit: 'objects/s',
    bound: BOUND_CREATES_PER_S,
    boundKind: 'min',
    note,
  });
  recordFigure({
    bench,
    name: `${CLIENTS} clients: create p99`,
    value: p99,
    unit: 'ms',
    bound: BOUND_P99_MS,
    note,
  });
}

// The profile is xenosd's alone: NODE_OPTIONS reaches the daemon (and its re-exec), not this process.
const env = profDir ? `--cpu-prof --cpu-prof-dir=${profDir}` : undefined;
if (env) process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} ${env}`.trim();
const xd = await startXenosd({ hostName: 'bench' });
if (env) process.env.NODE_OPTIONS = process.env.NODE_OPTIONS?.replace(env, '').trim();
try {
  await oneClient(xd);
  await manyClients(xd);
} finally {
  await xd.stop();
  removeDataDir(xd.dataDir);
}
