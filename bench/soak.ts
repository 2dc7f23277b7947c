// Benchmark: a soak. A real xenosd, with its default settings (its own heap bound included), takes
// create / patch / delete churn over 1,000 ServiceInstance names from 8 clients for a while (10 minutes
// by default); every few seconds the bench samples the daemon's RSS (/proc/PID/status), V8 heap (through
// the inspector, Runtime.getHeapUsage) and open file handles (/proc/PID/fd). After a warm-up (the first
// fifth of the run), each figure's growth — the mean of the last tenth of the samples against the mean
// of the first tenth after warm-up — is held against ±10 %. Prints the load average with the figures.
//
//   node --no-warnings bench/soak.ts [duration=600s] [objects=1000]

import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
import { parseDuration } from '../src/daemon/option-values.ts';
import { removeDataDir, startXenosd, type XenosdProcess } from '../test/daemon/xenosd-process.ts';
import { recordFigure } from './lib/figures.ts';

const DURATION_MS = parseDuration(process.argv[2] ?? '600s');
const OBJECTS = Number(process.argv[3] ?? 1000);
const CLIENTS = 8;
const SAMPLE_MS = Math.max(1000, Math.min(5000, DURATION_MS / 60));
const BOUND_GROWTH = 0.1;
const BASE = '/apis/xenos.io/v1alpha1/namespaces/soak/serviceinstances';
const MB = 1024 * 1024;

interface Sample {
  atMs: number;
  ops: number;
  rss: number;
  heapUsed: number;
  fds: number;
  load: number;
}

/** A free loopback port for the daemon's inspector. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Asks the daemon's inspector for its V8 heap use. */
class HeapProbe {
  #ws: WebSocket | undefined;
  #next = 1;
  readonly #waiting = new Map<number, (usedSize: number) => void>();

  async connect(port: number): Promise<void> {
    const [target] = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
      webSocketDebuggerUrl: string;
    }[];
    const ws = new WebSocket(target.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    ws.onmessage = (m) => {
      const reply = JSON.parse(String(m.data)) as { id?: number; result?: { usedSize: number } };
      if (reply.id !== undefined) this.#waiting.get(reply.id)?.(reply.result?.usedSize ?? Number.NaN);
      if (reply.id !== undefined) this.#waiting.delete(reply.id);
    };
    this.#ws = ws;
  }

  used(): Promise<number> {
    const id = this.#next++;
    const reply = new Promise<number>((resolve) => this.#waiting.set(id, resolve));
    this.#ws?.send(JSON.stringify({ id, method: 'Runtime.getHeapUsage' }));
    return reply;
  }

  close(): void {
    this.#ws?.close();
  }
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** One churn step on a random name: create it when absent, else patch it (3 in 4) or delete it. */
async function churnOnce(xd: XenosdProcess, rand: () => number): Promise<void> {
  const i = Math.floor(rand() * OBJECTS);
  const name = `soak-${i}`;
  const res = await xd.api(`${BASE}/${name}`);
  await res.arrayBuffer();
  if (res.status === 404) {
    const created = await xd.api(BASE, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'xenos.io/v1alpha1',
        kind: 'ServiceInstance',
        metadata: { name, labels: { app: 'soak' } },
        spec: { templateRef: { name: 'web' }, parameters: { index: String(i) } },
      }),
    });
    await created.arrayBuffer();
  } else if (rand() < 0.75) {
    const patched = await xd.api(`${BASE}/${name}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/merge-patch+json' },
      body: JSON.stringify({ metadata: { labels: { round: String(Math.floor(rand() * 1e6)) } } }),
    });
    await patched.arrayBuffer();
  } else {
    const deleted = await xd.api(`${BASE}/${name}`, { method: 'DELETE' });
    await deleted.arrayBuffer();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function growth(samples: Sample[], pick: (s: Sample) => number): { from: number; to: number; ratio: number } {
  const after = samples.filter((s) => s.atMs >= DURATION_MS / 5);
  const tenth = Math.max(1, Math.floor(after.length / 10));
  const from = mean(after.slice(0, tenth).map(pick));
  const to = mean(after.slice(-tenth).map(pick));
  return { from, to, ratio: to / from - 1 };
}

const inspectPort = await freePort();
process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:${inspectPort}`.trim();
const xd = await startXenosd({ hostName: 'soak' });
process.env.NODE_OPTIONS = process.env.NODE_OPTIONS.replace(`--inspect=127.0.0.1:${inspectPort}`, '').trim();
const pid = xd.child.pid!;
const heap = new HeapProbe();
try {
  await heap.connect(inspectPort);
  let seed = 42;
  const rand = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  let ops = 0;
  let errors = 0;
  const t0 = performance.now();
  const samples: Sample[] = [];
  const sample = async () => {
    samples.push({
      atMs: performance.now() - t0,
      ops,
      rss: rssOf(pid),
      heapUsed: await heap.used(),
      fds: readdirSync(`/proc/${pid}/fd`).length,
      load: loadavg()[0],
    });
    const s = samples[samples.length - 1];
    console.log(
      `  ${(s.atMs / 1000).toFixed(0).padStart(5)} s  ${String(s.ops).padStart(7)} ops  RSS ${(s.rss / MB).toFixed(0).padStart(4)} MB  ` +
        `heap ${(s.heapUsed / MB).toFixed(0).padStart(4)} MB  fds ${String(s.fds).padStart(4)}  load ${s.load.toFixed(1)}`,
    );
  };
  const sampler = setInterval(() => void sample(), SAMPLE_MS);
  console.log(
    `soak: ${OBJECTS} names, ${CLIENTS} clients, ${DURATION_MS / 1000} s, xenosd pid ${pid} (default settings)`,
  );
  await sample();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() - t0 < DURATION_MS) {
        try {
          await churnOnce(xd, rand);
        } catch {
          errors++;
        }
        ops++;
      }
    }),
  );
  clearInterval(sampler);
  await sample();
  const note = `${ops} ops (${errors} failed) in ${(DURATION_MS / 1000).toFixed(0)} s, load ${loadavg()[0].toFixed(1)}`;
  console.log(
    `  ${note}; growth after warm-up (${(DURATION_MS / 5000).toFixed(0)} s), last tenth vs first tenth:`,
  );
  for (const [name, pick, unit] of [
    ['RSS', (s: Sample) => s.rss / MB, 'MB'],
    ['heap used', (s: Sample) => s.heapUsed / MB, 'MB'],
    ['open fds', (s: Sample) => s.fds, ''],
  ] as const) {
    const g = growth(samples, pick);
    const pct = g.ratio * 100;
    console.log(
      `  ${name.padEnd(9)} ${g.from.toFixed(1)} -> ${g.to.toFixed(1)} ${unit}: ${pct >= 0 ? '+' : ''}${pct.toFixed(1)} % ` +
        `(bound ±${BOUND_GROWTH * 100} %: ${Math.abs(g.ratio) <= BOUND_GROWTH ? 'within' : 'OVER'}, ratio ${(Math.abs(g.ratio) / BOUND_GROWTH).toFixed(2)})`,
    );
    recordFigure({
      bench: 'soak',
      name: `${name} growth after warm-up`,
      value: Math.abs(pct),
      unit: '%',
      bound: BOUND_GROWTH * 100,
      note: `${g.from.toFixed(1)} -> ${g.to.toFixed(1)} ${unit}; ${note}`,
    });
  }
} finally {
  heap.close();
  await xd.stop();
  removeDataDir(xd.dataDir);
}
