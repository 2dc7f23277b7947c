// Benchmark: what the domain sandbox costs. N domains of the example web service (manifests/web/image,
// `node server.mjs`) are started at once on the process driver, each timed from its startDomain call to its
// endpoint's first HTTP 200; then the memory of each domain's whole process tree (supervisor, log pumps,
// bwrap and the sandbox's pid 1, the service) is read from /proc. Sandboxed (bubblewrap, own uid when
// root) and unsandboxed (--unsafe-no-sandbox) rounds alternate in the same run on the same machine; the
// unsandboxed figure is the baseline each sandboxed one is held against (ratio = sandboxed / unsandboxed).
// With N at once on a small machine the figure is mostly N node processes booting on few cores; the
// one-at-a-time starts (--sequential) show the sandbox's own cost per start.
//
//   node bench/sandbox-start.ts [--domains 20] [--rounds 2] [--sequential 5]

import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type DomainInfo, type DomainSpec, domainIdFor } from '../src/drivers/driver.ts';
import { ProcessDriver } from '../src/drivers/process/process-driver.ts';
import { type Figure, printFigure } from './lib/figures.ts';
import { MB, treesOf, usageOf } from './lib/proc-footprint.ts';
import { summarise } from './lib/stats.ts';
import { until } from './lib/wait.ts';

const BENCH = 'sandbox-start';
const IMAGE = join(import.meta.dirname, '..', 'manifests', 'web', 'image');

const { values: flags } = parseArgs({
  options: {
    domains: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '2' },
    sequential: { type: 'string', default: '5' },
  },
});
const sequential = Number(flags.sequential);
const count = Number(flags.domains);
const rounds = Number(flags.rounds);
const load = () => loadavg()[0].toFixed(2);

function spec(round: string, i: number): DomainSpec {
  const instance = {
    namespace: 'bench',
    name: `${round}-${i}`,
    uid: `${process.pid.toString(16)}${i}-bench`,
  };
  return {
    id: domainIdFor(instance),
    instance,
    image: { path: IMAGE, digest: 'sha256:bench-web' },
    process: { command: ['node', 'server.mjs'] },
    ports: [{ name: 'http', port: 8080, protocol: 'TCP', appProtocol: 'http' }],
    token: 'bench-token',
  };
}

/** Resolves once the endpoint answers 200. */
async function answering(info: DomainInfo): Promise<void> {
  const url = `http://127.0.0.1:${info.endpoints[0].port}/healthz`;
  await until(
    async () => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
        await res.text();
        return res.status === 200;
      } catch {
        return false;
      }
    },
    60_000,
    `${url} answering`,
    10,
  );
}

interface Round {
  startMs: number[];
  rssPerDomainMB: number;
  processesPerDomain: number;
}

async function round(sandboxed: boolean, n: number, oneByOne = false): Promise<Round> {
  const dataDir = await mkdtemp(join(tmpdir(), `xenos-bench-${sandboxed ? 'sbx' : 'raw'}-`));
  const driver = new ProcessDriver({}, { dataDir, sandbox: sandboxed ? {} : false });
  await driver.start();
  const specs = Array.from({ length: n }, (_, i) => spec(sandboxed ? 'sbx' : 'raw', i));
  try {
    // Warm the image into the page cache and the sandbox probe, untimed.
    await driver.prepare(specs[0]);
    const timed = async (s: DomainSpec) => {
      const t0 = performance.now();
      const info = await driver.startDomain(s);
      await answering(info);
      return performance.now() - t0;
    };
    const startMs: number[] = [];
    if (oneByOne) for (const s of specs) startMs.push(await timed(s));
    else startMs.push(...(await Promise.all(specs.map(timed))));
    const infos = await driver.list();
    const pids = await treesOf(infos.map((i) => i.pid!).filter(Boolean));
    const usage = await usageOf(pids);
    return { startMs, rssPerDomainMB: usage.rssBytes / MB / n, processesPerDomain: usage.alive / n };
  } finally {
    for (const s of specs) await driver.destroy(s.id).catch(() => {});
    await driver.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const results: Record<'sandboxed' | 'unsandboxed', Round[]> = { sandboxed: [], unsandboxed: [] };
const oneByOne: Record<'sandboxed' | 'unsandboxed', number[]> = { sandboxed: [], unsandboxed: [] };
console.log(`${BENCH}: ${count} domains at once, ${rounds} rounds each, alternating; load average ${load()}`);
for (let r = 0; r < rounds; r++) {
  for (const sandboxed of r % 2 === 0 ? [false, true] : [true, false]) {
    const res = await round(sandboxed, count);
    const s = summarise(res.startMs);
    console.log(
      `  round ${r + 1} ${sandboxed ? 'sandboxed  ' : 'unsandboxed'}: start → answering p50 ${s.p50.toFixed(0)} ms, p99 ${s.p99.toFixed(0)} ms; ${res.rssPerDomainMB.toFixed(1)} MB and ${res.processesPerDomain.toFixed(1)} processes per domain; load ${load()}`,
    );
    results[sandboxed ? 'sandboxed' : 'unsandboxed'].push(res);
  }
}

for (let r = 0; r < rounds && sequential > 0; r++) {
  for (const sandboxed of r % 2 === 0 ? [false, true] : [true, false]) {
    const res = await round(sandboxed, sequential, true);
    oneByOne[sandboxed ? 'sandboxed' : 'unsandboxed'].push(...res.startMs);
  }
}

const all = (k: keyof typeof results) => summarise(results[k].flatMap((r) => r.startMs));
const mean = (k: keyof typeof results, f: (r: Round) => number) =>
  results[k].reduce((a, r) => a + f(r), 0) / results[k].length;
const sbx = all('sandboxed');
const raw = all('unsandboxed');
const note = `baseline: unsandboxed, same run; n=${sbx.n}; load ${load()}`;
const round1 = (v: number) => Math.round(v * 10) / 10;
const seqSbx = summarise(oneByOne.sandboxed);
const seqRaw = summarise(oneByOne.unsandboxed);
const figures: Figure[] = [
  {
    bench: BENCH,
    name: 'start → answering p50 (one at a time)',
    value: seqSbx.p50,
    unit: 'ms',
    bound: round1(seqRaw.p50),
    note: `baseline: unsandboxed, same run; n=${seqSbx.n}; load ${load()}`,
  },
  {
    bench: BENCH,
    name: `start → answering p50 (${count} at once)`,
    value: sbx.p50,
    unit: 'ms',
    bound: round1(raw.p50),
    note,
  },
  {
    bench: BENCH,
    name: `start → answering p99 (${count} at once)`,
    value: sbx.p99,
    unit: 'ms',
    bound: round1(raw.p99),
    note,
  },
  {
    bench: BENCH,
    name: 'RSS per domain (whole tree)',
    value: mean('sandboxed', (r) => r.rssPerDomainMB),
    unit: 'MB',
    bound: round1(mean('unsandboxed', (r) => r.rssPerDomainMB)),
    note,
  },
  {
    bench: BENCH,
    name: 'processes per domain',
    value: mean('sandboxed', (r) => r.processesPerDomain),
    unit: '',
    bound: mean('unsandboxed', (r) => r.processesPerDomain),
    note,
  },
];
console.log(`${BENCH}: sandboxed, against the unsandboxed baseline:`);
for (const f of figures) printFigure(f, 40);
