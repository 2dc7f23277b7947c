// Benchmark: latency of mutating API calls against a real xenosd process over HTTP on loopback —
// create (POST), merge patch (PATCH), status update (PATCH /status) and delete, one at a time,
// each answered only after the store's durable write. Prints p50/p99 next to the bound it is held
// against (p99 <= 50 ms) and the ratio.
//
//   node --no-warnings bench/api-latency.ts [objects=300]

import { removeDataDir, startXenosd } from '../test/daemon/xenosd-process.ts';
import { recordFigure } from './lib/figures.ts';
import { percentile } from './lib/stats.ts';

const BOUND_P99_MS = 50;
const objects = Number(process.argv[2] ?? 300);
const BASE = '/apis/xenos.io/v1alpha1/namespaces/bench/serviceinstances';

const xd = await startXenosd({ hostName: 'bench' });
try {
  const latencies: Record<string, number[]> = { create: [], patch: [], status: [], delete: [] };
  const timed = async (
    op: string,
    path: string,
    method: string,
    body: unknown,
    type = 'application/json',
  ) => {
    const t0 = performance.now();
    const res = await xd.api(path, {
      method,
      headers: { 'Content-Type': type },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    await res.arrayBuffer();
    latencies[op].push(performance.now() - t0);
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status}`);
  };
  const merge = 'application/merge-patch+json';
  for (let i = 0; i < objects; i++) {
    const name = `web-${i}`;
    await timed('create', BASE, 'POST', {
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'ServiceInstance',
      metadata: { name, labels: { app: 'web' } },
      spec: { templateRef: { name: 'web' }, parameters: { index: String(i) } },
    });
    await timed('patch', `${BASE}/${name}`, 'PATCH', { spec: { host: `h${i % 4}` } }, merge);
    await timed('status', `${BASE}/${name}/status`, 'PATCH', { status: { phase: 'Running' } }, merge);
  }
  for (let i = 0; i < objects; i++) await timed('delete', `${BASE}/web-${i}`, 'DELETE', undefined);

  const all = Object.values(latencies)
    .flat()
    .sort((a, b) => a - b);
  console.log(`api-latency: ${all.length} mutating calls to a real xenosd at ${xd.url}, one at a time`);
  for (const [op, l] of Object.entries(latencies)) {
    l.sort((a, b) => a - b);
    console.log(
      `  ${op.padEnd(7)} p50 ${percentile(l, 50).toFixed(2)} ms   p99 ${percentile(l, 99).toFixed(2)} ms`,
    );
  }
  const p99 = percentile(all, 99);
  console.log(
    `  all     p50 ${percentile(all, 50).toFixed(2)} ms   p99 ${p99.toFixed(2)} ms   max ${all[all.length - 1].toFixed(2)} ms`,
  );
  console.log(
    `  bound   p99 <= ${BOUND_P99_MS} ms: ${p99 <= BOUND_P99_MS ? 'within' : 'OVER'} (ratio ${(p99 / BOUND_P99_MS).toFixed(2)})`,
  );
  const bench = 'api-latency';
  recordFigure({ bench, name: 'mutating call p50', value: percentile(all, 50), unit: 'ms' });
  recordFigure({ bench, name: 'mutating call p99', value: p99, unit: 'ms', bound: BOUND_P99_MS });
} finally {
  await xd.stop();
  removeDataDir(xd.dataDir);
}
