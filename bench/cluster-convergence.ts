// Benchmark of a cluster of REAL xenosd processes on this machine (src/local-cluster/local-cluster.ts, plain HTTP,
// p2p over TCP loopback with the cluster key), at each size given (default 10 and 30 hosts):
//  - desired-state convergence: a ServiceInstance POSTed to one host (round-robin), timed from the request
//    until the watch of EVERY host has delivered it (bound: p99 <= 1 s at 10 hosts, <= 2 s at 30);
//  - rows sent per write: from every host's /metrics before and after the writes (and what they set off
//    settled), the rows sent to peers by push and by anti-entropy over the writes made on the hosts (the
//    instances and what controllers wrote about them, e.g. a FailedScheduling event): bound 1.5 x (N-1),
//    each write to each other host about once; and the rows each host received per write (about 1);
//  - discovery from a cold host: a host that has just joined (and caught up) asks its own API for
//    `discover web.http` for the first time, then once more warm (bound: p50 <= 20 ms at 10 hosts), and,
//    just before, GET /version on it: the floor under any call to a host that has just started;
//  - RSS of each xenosd process (VmRSS from /proc) once idle.
// Figures are printed with their bounds and recorded for bench/run.ts (bench/lib/figures.ts), with the load
// average before and after each size in their note.
// The instances written for convergence fit no host (hostSelector zone=nowhere), so they are pure desired
// state; the example service (manifests/web) runs one real instance for discovery.
//
//   node --disable-warning=ExperimentalWarning bench/cluster-convergence.ts [sizes=10,30] [writes=100] [cold=5]

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster, type LocalHost } from '../src/local-cluster/local-cluster.ts';
import { printFigure } from './lib/figures.ts';
import { parkedInstance } from './lib/parked-instance.ts';
import { summarise } from './lib/stats.ts';

const sizes = (process.argv[2] ?? '10,30').split(',').map(Number);
const writes = Number(process.argv[3] ?? 100);
const colds = Number(process.argv[4] ?? 5);
const SI = '/apis/xenos.io/v1alpha1/namespaces/default/serviceinstances';

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function call(h: LocalHost, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(h.apiUrl + path, {
    ...init,
    headers: { Authorization: `Bearer ${h.token}`, 'Content-Type': 'application/json', ...init.headers },
  });
}

/** Streams a watch of ServiceInstances on `h`; calls `seen(name)` for each ADDED object. */
function watch(h: LocalHost, seen: (name: string) => void, signal: AbortSignal): Promise<void> {
  return (async () => {
    const res = await call(h, `${SI}?watch=1`, { signal });
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += Buffer.from(chunk).toString('utf8');
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) {
          const ev = JSON.parse(line);
          if (ev.type === 'ADDED') seen(ev.object.metadata.name);
        }
        nl = buf.indexOf('\n');
      }
    }
  })().catch((err) => {
    if (!signal.aborted) console.error(`watch on ${h.name} ended: ${err.message}`);
  });
}

interface Counters {
  writes: number;
  sent: number;
  received: number;
}

/** The replication counters of every host, summed (GET /metrics). */
async function counters(hosts: LocalHost[]): Promise<Counters> {
  const out = { writes: 0, sent: 0, received: 0 };
  for (const h of hosts) {
    const text = await (await call(h, '/metrics')).text();
    const get = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
    out.writes += get('xenos_replication_local_writes_total');
    out.sent += get('xenos_replication_rows_pushed_total') + get('xenos_replication_rows_synced_total');
    out.received += get('xenos_replication_rows_received_total');
  }
  return out;
}

/** Counters once nothing moves for 2 s (the writes' pushes, and what they set off, are done), or after
 *  30 s (a loaded cluster whose hosts keep writing, e.g. Host verdicts, never stands still). */
async function settledCounters(hosts: LocalHost[]): Promise<Counters> {
  let last = await counters(hosts);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 2000));
    const now = await counters(hosts);
    if (now.sent === last.sent && now.writes === last.writes) return now;
    last = now;
  }
  return last;
}

async function convergence(cluster: LocalCluster): Promise<{ latencies: number[]; traffic: Counters }> {
  const hosts = cluster.hosts;
  const before = await settledCounters(hosts);
  const arrivals = new Map<string, Map<string, number>>();
  const abort = new AbortController();
  const watches = hosts.map((h) =>
    watch(
      h,
      (name) => {
        const m = arrivals.get(name) ?? new Map<string, number>();
        if (!m.has(h.name)) m.set(h.name, performance.now());
        arrivals.set(name, m);
      },
      abort.signal,
    ),
  );
  await new Promise((r) => setTimeout(r, 500)); // watches established
  const latencies: number[] = [];
  for (let k = 0; k < writes; k++) {
    const name = `conv-${k}`;
    const h = hosts[k % hosts.length];
    const t0 = performance.now();
    const res = await call(h, SI, {
      method: 'POST',
      body: JSON.stringify(parkedInstance(name)),
    });
    if (res.status !== 201) throw new Error(`POST ${name} on ${h.name}: ${res.status} ${await res.text()}`);
    const deadline = Date.now() + 30_000;
    while ((arrivals.get(name)?.size ?? 0) < hosts.length) {
      if (Date.now() > deadline) throw new Error(`${name} did not reach every host in 30 s`);
      await new Promise((r) => setTimeout(r, 2));
    }
    latencies.push(Math.max(...arrivals.get(name)!.values()) - t0);
    await new Promise((r) => setTimeout(r, 20));
  }
  abort.abort();
  await Promise.all(watches);
  const after = await settledCounters(hosts);
  for (let k = 0; k < writes; k++) await call(hosts[0], `${SI}/conv-${k}`, { method: 'DELETE' });
  const traffic = {
    writes: after.writes - before.writes,
    sent: after.sent - before.sent,
    received: after.received - before.received,
  };
  return { latencies, traffic };
}

async function discovery(
  cluster: LocalCluster,
): Promise<{ cold: number[]; warm: number[]; api: number[]; misses: number; failures: string[] }> {
  const api: number[] = [];
  const cold: number[] = [];
  const warm: number[] = [];
  const failures: string[] = [];
  let misses = 0;
  for (let i = 0; i < colds; i++) {
    const h = await cluster.addHost(`cold-${i + 1}`);
    await cluster.waitHostsReady([h]);
    // What any call to this host costs right now (HTTP, auth, a loaded event loop), next to discover's time.
    const tv = performance.now();
    await (await call(h, '/version')).text();
    api.push(performance.now() - tv);
    for (const list of [cold, warm]) {
      const t0 = performance.now();
      const res = await call(h, '/apis/xenos.io/v1alpha1/namespaces/default/discover/web.http');
      const body = (await res.json()) as { items?: unknown[]; message?: string };
      list.push(performance.now() - t0);
      if (res.status !== 200) failures.push(`${h.name}: ${res.status} ${body.message ?? ''}`);
      else if ((body.items ?? []).length === 0) misses++;
    }
  }
  return { cold, warm, api, misses, failures };
}

/** Starts the cluster's hosts a few at a time (30 xenosd starting at once on 2 cores miss the 30 s a
 *  host is given to serve its API), then waits until each sees all of them Ready. */
async function startInBatches(cluster: LocalCluster, n: number, batch = 2): Promise<void> {
  const hosts = [await cluster.addHost('host-1')];
  for (let i = 2; i <= n; i += batch) {
    const names = Array.from({ length: Math.min(batch, n - i + 1) }, (_, k) => `host-${i + k}`);
    const started = await Promise.allSettled(names.map((name) => cluster.addHost(name)));
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    hosts.push(...started.map((r) => (r as PromiseFulfilledResult<LocalHost>).value));
  }
  await cluster.waitHostsReady(hosts, { timeoutMs: 300_000 });
}

const manifests = new URL('../manifests/web', import.meta.url).pathname;
for (const n of sizes) {
  const dir = mkdtempSync(join(tmpdir(), 'xenos-bench-cluster-'));
  const cluster = new LocalCluster({
    dir,
    hosts: n,
    tls: false,
    hostTimeout: '15s',
    log: () => {},
    startTimeoutMs: 180_000,
  });
  try {
    const loadBefore = loadavg()[0];
    const t0 = performance.now();
    await startInBatches(cluster, n);
    const startS = (performance.now() - t0) / 1000;
    await cluster.ctl(['apply', '-f', manifests]);
    await cluster.waitReady(180_000);
    await new Promise((r) => setTimeout(r, 3000)); // idle a moment before RSS
    const rss = cluster.hosts.map((h) => rssMb(h.child.pid!));
    const { latencies: conv, traffic } = await convergence(cluster);
    const load = `load ${loadBefore.toFixed(1)} -> ${loadavg()[0].toFixed(1)}`;
    const bound = n <= 10;
    console.log(
      `\n${n} xenosd processes (real, one machine, TCP loopback, cluster key on); started in ${startS.toFixed(1)} s; ${load}`,
    );
    const c = summarise(conv);
    const bench = 'cluster-convergence';
    printFigure(
      {
        bench,
        name: `${n} hosts convergence p50`,
        value: c.p50,
        unit: 'ms',
        note: `${writes} writes; ${load}`,
      },
      44,
    );
    printFigure(
      {
        bench,
        name: `${n} hosts convergence p99`,
        value: c.p99,
        unit: 'ms',
        bound: n <= 10 ? 1000 : 2000,
        note: `${writes} writes -> watch on all ${n}; ${load}`,
      },
      44,
    );
    printFigure(
      {
        bench,
        name: `${n} hosts rows sent per write`,
        value: traffic.sent / traffic.writes,
        unit: 'rows',
        bound: 1.5 * (n - 1),
        note: `${traffic.sent} rows sent (push + anti-entropy) for ${traffic.writes} writes made on the hosts (${writes} instances and what they set off); ${load}`,
      },
      44,
    );
    printFigure(
      {
        bench,
        name: `${n} hosts rows received per host per write`,
        value: traffic.received / traffic.writes / (n - 1),
        unit: 'rows',
        note: `1 = each host got each write once; ${load}`,
      },
      44,
    );
    // Convergence is printed above before discovery starts a host more (which may take long on a loaded machine).
    const disc = await discovery(cluster);
    const first = summarise(disc.cold);
    const second = summarise(disc.warm);
    const discNote = `${colds} cold hosts, max ${first.max.toFixed(0)} ms, ${disc.misses} empty answers, ${disc.failures.length} errors; ${load}`;
    printFigure(
      {
        bench,
        name: `${n} hosts discover from a cold host p50`,
        value: first.p50,
        unit: 'ms',
        ...(bound ? { bound: 20 } : {}),
        note: discNote,
      },
      44,
    );
    printFigure(
      {
        bench,
        name: `${n} hosts discover, second query p50`,
        value: second.p50,
        unit: 'ms',
        ...(bound ? { bound: 20 } : {}),
        note: `max ${second.max.toFixed(0)} ms; ${load}`,
      },
      44,
    );
    printFigure(
      {
        bench,
        name: `${n} hosts GET /version on the cold host p50`,
        value: summarise(disc.api).p50,
        unit: 'ms',
        note: `just before its first discover: the floor under any call to it; ${load}`,
      },
      44,
    );
    for (const f of disc.failures) console.log(`  discover failed on ${f}`);
    printFigure(
      {
        bench,
        name: `${n} hosts RSS per xenosd (mean)`,
        value: rss.reduce((a, b) => a + b, 0) / rss.length,
        unit: 'MB',
        note: `max ${Math.max(...rss).toFixed(0)} MB`,
      },
      44,
    );
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
