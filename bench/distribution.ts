// Benchmark: an image of S bytes to N hosts. N + 1 network namespaces (a seed holding the image and N
// hosts that need it) on one bridge, each host's link capped with `tc` (upload and download, default
// 100 Mbit/s each); timed until every host holds the image, held against the Kumar–Ross lower bound for
// distributing a file from one seed, max(S/u_seed, S/d_min, N·S/(u_seed + Σu_i)), and, in the same run, a
// one-source copy to all (the seed sends the whole image to every host at once over HTTP: the paper's
// design, N·S/u_seed at best). The swarm: a real xenosd in every namespace, the image pushed to the
// seed, every host asked to pull it at once (lib/swarm-transfer.ts). Each mode runs `--runs` times
// (default 5): p50 and worst. The namespaces are
// named xn-<pid>-dist-* (this process only) and deleted on exit, also on Ctrl-C; needs root, iproute2, tc.
//
//   node bench/distribution.ts [--hosts 4] [--size 16Mi] [--rate 100mbit] [--seed-rate RATE] [--runs 5]
//                              [--modes one-source,swarm] [--timeout 300s]
//
// The issue's run: --hosts 6 --size 256Mi --rate 100mbit (about 21 s at the bound; 2 min one-source).

import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NetnsLab, netnsUnavailable } from '../test/cluster/netns.ts';
import { durationMs } from './lib/args.ts';
import { printFigure } from './lib/figures.ts';
import { capLinks, oneSourceCopy } from './lib/netns-transfer.ts';
import { summarise } from './lib/stats.ts';
import { SwarmLab } from './lib/swarm-transfer.ts';

const BENCH = 'distribution';

const { values: flags } = parseArgs({
  options: {
    hosts: { type: 'string', default: '4' },
    size: { type: 'string', default: '16Mi' },
    rate: { type: 'string', default: '100mbit' },
    'seed-rate': { type: 'string' },
    runs: { type: 'string', default: '5' },
    modes: { type: 'string', default: 'one-source,swarm' },
    timeout: { type: 'string', default: '300s' },
  },
});

/** `16Mi`, `256Mi`, `1Gi`, `1000000` → bytes. */
function bytesOf(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi)?$/.exec(text);
  if (!m) throw new Error(`${BENCH}: --size ${text}: expected a size like 16Mi or 1Gi`);
  return Math.round(Number(m[1]) * { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, '': 1 }[m[2] ?? '']!);
}

/** `100mbit`, `1gbit`, `500kbit` → bits per second. */
function bitsOf(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(kbit|mbit|gbit)$/.exec(text);
  if (!m) throw new Error(`${BENCH}: ${text}: expected a rate like 100mbit`);
  return Number(m[1]) * { kbit: 1e3, mbit: 1e6, gbit: 1e9 }[m[2]]!;
}

const n = Number(flags.hosts);
const size = bytesOf(flags.size);
const rate = bitsOf(flags.rate);
const seedRate = bitsOf(flags['seed-rate'] ?? flags.rate);
const runs = Number(flags.runs);
const timeoutMs = durationMs(flags.timeout, BENCH);
const modes = flags.modes.split(',').filter(Boolean);
if (!Number.isInteger(n) || n < 1 || n > 60) throw new Error(`${BENCH}: --hosts must be 1..60`);

const unavailable = netnsUnavailable();
if (unavailable) {
  console.log(`${BENCH}: skipped: ${unavailable}`);
  process.exit(0);
}

// Kumar & Ross, "Peer-assisted file distribution: the minimum distribution time" (2006): with every host's
// upload u_i and download d_i (bytes/s), no scheme finishes before each of these.
const u = rate / 8;
const uSeed = seedRate / 8;
const terms = {
  'S/u_seed': size / uSeed,
  'S/d_min': size / u,
  'N·S/(u_seed+Σu_i)': (n * size) / (uSeed + n * u),
};
const bound = Number(Math.max(...Object.values(terms)).toFixed(3));
const oneSourceIdeal = Number(Math.max((n * size) / uSeed, size / u).toFixed(3));

const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
console.log(
  `${BENCH}: ${flags.size} (${size} B) from 1 seed to ${n} hosts, links capped at ${flags.rate} up and down ` +
    `(seed ${flags['seed-rate'] ?? flags.rate}), ${runs} runs per mode; load ${load()}`,
);
console.log(
  `  Kumar–Ross bound ${bound.toFixed(2)} s = max(${Object.entries(terms)
    .map(([k, v]) => `${k} ${v.toFixed(2)} s`)
    .join(', ')}); one source at best N·S/u_seed = ${oneSourceIdeal.toFixed(2)} s`,
);

const lab = new NetnsLab({ prefix: `xn-${process.pid}-dist` });
const dir = await mkdtemp(join(tmpdir(), 'xenos-bench-dist-'));
let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await lab.destroy();
  await rm(dir, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void cleanup().finally(() => process.exit(130));
  });
}

try {
  const file = join(dir, 'image.bin');
  const bytes = randomBytes(size);
  await writeFile(file, bytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const hosts = await lab.create(n + 1);
  const [seed, ...others] = hosts;
  await capLinks(lab, hosts, [seedRate, ...others.map(() => rate)]);

  for (const mode of modes) {
    if (mode !== 'one-source' && mode !== 'swarm') {
      throw new Error(`${BENCH}: unknown mode ${mode} (one-source, swarm)`);
    }
    const swarm = mode === 'swarm' ? await SwarmLab.start(lab, seed, others, join(dir, 'xenosd')) : undefined;
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      let t: number;
      if (swarm) {
        // A fresh image each run: no host holds it yet.
        const fresh = join(dir, `image-${r}.bin`);
        await writeFile(fresh, randomBytes(size));
        const digest = await swarm.push(fresh);
        const pulled = await swarm.pullAll(digest, timeoutMs);
        t = pulled.seconds;
        console.log(
          `  swarm run ${r + 1}: the most peers sending to each host at once: ${pulled.maxHolders.join(' ')}; ` +
            `the seed sent ${(pulled.seedSent / size).toFixed(2)} × the image`,
        );
      } else {
        t = await oneSourceCopy(lab, seed, others, file, sha256, timeoutMs);
      }
      times.push(t);
      console.log(
        `  ${mode} run ${r + 1}: ${t.toFixed(2)} s (${(t / bound).toFixed(2)} × the bound); load ${load()}`,
      );
    }
    await swarm?.stop();
    const s = summarise(times);
    const note = `${n} hosts, ${flags.size}, ${flags.rate}; load ${load()}`;
    printFigure({ bench: BENCH, name: `${mode} p50`, value: s.p50, unit: 's', bound, note });
    printFigure({ bench: BENCH, name: `${mode} worst of ${runs}`, value: s.max, unit: 's', bound, note });
    if (mode === 'one-source') {
      printFigure({
        bench: BENCH,
        name: 'one-source p50 vs its own ideal',
        value: s.p50,
        unit: 's',
        bound: oneSourceIdeal,
        note: 'N·S/u_seed: the seed link is the bottleneck',
      });
    }
  }
} finally {
  await cleanup();
}
