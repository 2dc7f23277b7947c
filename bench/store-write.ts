// Benchmark: durable write throughput and latency of the desired-state store (SqliteStore, WAL,
// synchronous=FULL: every write is fsynced before it returns). Prints writes/s and p50/p99 write
// latency next to the bound it is held against: a mutating API call must answer within 50 ms at
// p99, and the store's durable write is the part of that budget measured here.
//
//   node --no-warnings bench/store-write.ts [writes=2000] [dir=a temp dir]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { XObject } from '../src/api/types.ts';
import { openStore } from '../src/store/sqlite-store.ts';
import { recordFigure } from './lib/figures.ts';
import { percentile } from './lib/stats.ts';

const BOUND_P99_MS = 50;
const writes = Number(process.argv[2] ?? 2000);
const baseDir = process.argv[3];
const dir = mkdtempSync(join(baseDir ?? tmpdir(), 'xenos-bench-store-'));

function instance(i: number): XObject {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name: `web-${i}`, namespace: 'bench', labels: { app: 'web', shard: String(i % 16) } },
    spec: { templateRef: { name: 'web' }, parameters: { index: String(i) }, runStrategy: 'Always' },
  };
}

const store = openStore({ path: join(dir, 'store.db'), namespaced: () => true, writer: 'bench' });
try {
  // Half creates, half updates (a spec change, so generation moves), as controllers and users mix them.
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < writes; i++) {
    const t0 = performance.now();
    if (i % 2 === 0) store.create(instance(i));
    else {
      const prev = store.get({ kind: 'ServiceInstance', namespace: 'bench', name: `web-${i - 1}` })!;
      store.update({ ...prev, spec: { ...prev.spec, parameters: { index: String(i) } } });
    }
    latencies.push(performance.now() - t0);
  }
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const p50 = percentile(latencies, 50);
  const p99 = percentile(latencies, 99);
  const max = latencies[latencies.length - 1];
  console.log(`store-write: ${writes} durable writes (WAL, synchronous=FULL) in ${dir}`);
  console.log(`  throughput  ${(writes / seconds).toFixed(0)} writes/s`);
  console.log(`  latency     p50 ${p50.toFixed(2)} ms   p99 ${p99.toFixed(2)} ms   max ${max.toFixed(2)} ms`);
  console.log(
    `  bound       p99 <= ${BOUND_P99_MS} ms for a whole mutating API call: ${p99 <= BOUND_P99_MS ? 'within' : 'OVER'} ` +
      `(store share ${((p99 / BOUND_P99_MS) * 100).toFixed(0)}%)`,
  );
  const bench = 'store-write';
  recordFigure({ bench, name: 'durable writes/s', value: writes / seconds, unit: 'writes/s' });
  recordFigure({ bench, name: 'write p50', value: p50, unit: 'ms' });
  recordFigure({
    bench,
    name: 'write p99 (store share)',
    value: p99,
    unit: 'ms',
    bound: BOUND_P99_MS,
    note: 'the bound is for a whole mutating API call',
  });
} finally {
  store.close();
  rmSync(dir, { recursive: true, force: true });
}
