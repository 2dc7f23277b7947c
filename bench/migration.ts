// Benchmark: live migration of a real QEMU guest (the demo guest, 128 MiB, TCG) with its disk overlay
// between two QEMU drivers on two data dirs — two hosts on one machine — through the real libp2p
// migration transport (cluster key + Noise over loopback). For an idle guest and one that dirties memory
// (`xenos.dirty=<MiB>`), with and without a bandwidth cap: the pause as the guest sees it (destination
// RESUME − source STOP, clocks aligned; p50/p99) and the total time of a migration against the time the
// link needs for what had to move, (memory sent + overlay) / bandwidth, the bandwidth measured over the
// same transport in the same run (or the cap). Then `--count N` consecutive migrations back and forth,
// the guest checked healthy after each (same boot id, its counter continued), and the failure count.
// Run it on a quiet machine: both QEMUs, the guest and the tunnel's encryption share the CPU.
//
//   node bench/migration.ts [--runs 10] [--count 0] [--cap-mib 16] [--dirty-mib 16] [--memory-mib 128]
//                           [--only LABEL]

import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DomainInfo, DomainSpec } from '../src/drivers/driver.ts';
import { Cgroups } from '../src/drivers/process/cgroup.ts';
import { QemuDriver } from '../src/drivers/qemu/qemu-driver.ts';
import { waitUntil } from '../src/drivers/wait-until.ts';
import { openXenosNode, type XenosNode } from '../src/p2p/node.ts';
import { createClusterKey } from '../src/p2p/pnet/cluster-key.ts';
import { libp2pPair } from '../test/cluster/migration/libp2p-pair.ts';
import { DriverHarness, httpGet, testInstance, waitForBody } from '../test/drivers/driver-contract.ts';
import { demoGuestSpec } from '../test/guest-client.ts';
import { guestImageDir } from '../test/guest-image.ts';
import { flag } from './lib/args.ts';
import { printFigure } from './lib/figures.ts';
import { summarise } from './lib/stats.ts';

const BENCH = 'migration';
const MiB = 1024 * 1024;
const runs = Number(flag('--runs', '10'));
const count = Number(flag('--count', '0'));
const capMiB = Number(flag('--cap-mib', '16'));
const dirtyMiB = Number(flag('--dirty-mib', '16'));
const memoryMiB = Number(flag('--memory-mib', '128'));
/** `--only "dirty 16 MiB"`: run that one scenario (its label as printed), not all four. */
const only = process.argv.includes('--only') ? flag('--only', '') : undefined;
const tuningFlags = {
  ...(process.argv.includes('--no-auto-converge') ? { autoConverge: false } : {}),
  ...(process.argv.includes('--no-pace') ? { paceBandwidth: false } : {}),
};
const load = () =>
  `load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;

const guestDir = await guestImageDir();
const harness = new DriverHarness();
/** Two real libp2p nodes of one cluster (cluster key + Noise) on loopback, connected. */
const p2pRoot = await mkdtemp(join(tmpdir(), 'xenos-bench-migration-'));
const nodes: XenosNode[] = [];
const net = {
  async startCluster(n: number) {
    const clusterKeyFile = join(p2pRoot, 'swarm.key');
    await createClusterKey(clusterKeyFile);
    const hosts: { node: XenosNode; dataDir: string }[] = [];
    for (let i = 0; i < n; i++) {
      const dataDir = join(p2pRoot, `h${i}`);
      const node = await openXenosNode({
        dataDir,
        listen: '127.0.0.1:0',
        clusterKeyFile,
        bootstrap: hosts[0]?.node.multiaddrs ?? [],
      });
      await node.start();
      nodes.push(node);
      hosts.push({ node, dataDir });
    }
    const ok = await waitUntil(() => hosts.every((h) => h.node.connectedPeers().length > 0), {
      timeoutMs: 20_000,
    });
    if (!ok) throw new Error('the two libp2p nodes did not connect');
    return hosts;
  },
};
const pair = await libp2pPair(net);

function driver(dataDir: string, subtree: string, capBytes?: number): QemuDriver {
  return harness.track(
    new QemuDriver(
      {},
      {
        dataDir,
        cgroups: new Cgroups({ subtree }),
        migration: { ...tuningFlags, ...(capBytes ? { maxBandwidthBytesPerSecond: capBytes } : {}) },
      },
    ),
  );
}

const dirs = [await harness.dataDir(), await harness.dataDir()];
const urlOf = (info: DomainInfo) => `http://${info.endpoints[0].address}:${info.endpoints[0].port}/`;

/** The link's rate over the same transport: 64 MiB through one stream (bytes/s). */
async function linkRate(): Promise<number> {
  const ref = pair.expect();
  const total = 64 * MiB;
  const incoming = pair.incoming(ref.uid);
  const receiving = (async () => {
    for await (const { stream } of incoming) {
      let n = 0;
      for await (const chunk of stream) {
        n += (chunk as Buffer).length;
        if (n >= total) break;
      }
      stream.end();
      return n;
    }
  })();
  const stream = await pair.dialer(ref).open('bench', {});
  const piece = randomBytes(MiB);
  const began = performance.now();
  for (let sent = 0; sent < total; sent += MiB) {
    if (!stream.write(piece)) await once(stream, 'drain');
  }
  await receiving;
  const seconds = (performance.now() - began) / 1000;
  stream.destroy();
  return total / seconds;
}

function spec(name: string, cmdline = ''): DomainSpec {
  return demoGuestSpec(
    guestDir,
    testInstance(name),
    { resources: { memoryBytes: memoryMiB * MiB, vcpus: 1 } },
    cmdline,
  );
}

interface Outcome {
  ok: boolean;
  pauseMs?: number;
  totalMs: number;
  bytes: number;
  error?: string;
  info?: DomainInfo;
}

/** One move from `from` to `to`, then the guest checked: same boot id, a higher count. */
async function migrateOnce(
  from: QemuDriver,
  to: QemuDriver,
  s: DomainSpec,
  before: DomainInfo,
): Promise<Outcome> {
  const prior = (await httpGet(urlOf(before)))?.body ?? '';
  const ref = pair.expect();
  const began = performance.now();
  // A source that fails before it opens a stream must not leave the destination waiting for one.
  const gone = new AbortController();
  const [out, inn] = await Promise.allSettled([
    from.migrateOut(s.id, pair.dialer(ref), { mode: 'live' }).catch((err: Error) => {
      gone.abort(err);
      throw err;
    }),
    to.migrateIn(s, pair.incoming(ref.uid), { signal: gone.signal }),
  ]);
  const totalMs = performance.now() - began;
  if (out.status === 'rejected' || inn.status === 'rejected') {
    const why = [out, inn]
      .map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'ok'))
      .join(' | ');
    return { ok: false, totalMs, bytes: 0, error: why };
  }
  await from.destroy(s.id);
  const after = await waitForBody(urlOf(inn.value), 'count=', 30_000).catch(() => '');
  const [bootBefore, countBefore] = (prior.match(/boot=(\S+) count=(\d+)/) ?? []).slice(1);
  const [bootAfter, countAfter] = (after.match(/boot=(\S+) count=(\d+)/) ?? []).slice(1);
  const healthy = !!bootAfter && bootAfter === bootBefore && Number(countAfter) > Number(countBefore);
  const why = healthy ? '' : await diagnose(to, s.id);
  return {
    ok: healthy,
    pauseMs: out.value.downtimeMs,
    totalMs,
    bytes: out.value.bytesTransferred,
    info: inn.value,
    ...(healthy
      ? {}
      : {
          error: `after the move the guest said ${JSON.stringify(after)} (before: ${prior.trim()}); ${why}`,
        }),
  };
}

/** What the destination's QEMU and guest say, for a move after which the guest does not answer. */
async function diagnose(d: QemuDriver, id: string): Promise<string> {
  const status = await d
    .qmp(id, { timeoutMs: 5_000 })
    .then((q) => q.execute<{ status: string }>('query-status'))
    .then(
      (r) => r.status,
      (err: Error) => `no monitor (${err.message})`,
    );
  let console = '';
  for await (const chunk of d.logs(id, { tail: 15 })) if (chunk.stream === 'console') console += chunk.data;
  return `QEMU: ${status}; console: ${JSON.stringify(console.slice(-1200))}`;
}

async function scenario(
  label: string,
  cmdline: string,
  capBytes: number | undefined,
  link: number,
  n: number,
) {
  const drivers = [
    driver(dirs[0], 'xenos-bench-mig-a', capBytes),
    driver(dirs[1], 'xenos-bench-mig-b', capBytes),
  ];
  for (const d of drivers) await d.start();
  const s = spec(label.replace(/[^a-z]+/g, '-').slice(0, 20), cmdline);
  let info = await drivers[0].startDomain(s);
  await waitForBody(urlOf(info), 'count=', 120_000);
  const outcomes: Outcome[] = [];
  let here = 0;
  for (let i = 0; i < n; i++) {
    const o = await migrateOnce(drivers[here], drivers[1 - here], s, info);
    outcomes.push(o);
    if (o.info) {
      info = o.info;
      here = 1 - here;
    }
    if (!o.ok) console.log(`  ${label} #${i + 1}: FAILED: ${o.error}`);
  }
  for (const d of drivers) await d.destroy(s.id).catch(() => {});
  for (const d of drivers) await d.stop();
  const good = outcomes.filter((o) => o.ok && o.pauseMs !== undefined);
  const failures = outcomes.length - good.length;
  if (!good.length) {
    console.log(`  ${label}: no successful migration (${failures} failed)`);
    return;
  }
  const pauses = summarise(good.map((o) => o.pauseMs!));
  const totals = summarise(good.map((o) => o.totalMs));
  const rate = capBytes ? Math.min(capBytes, link) : link;
  const bounds = summarise(good.map((o) => (o.bytes / rate) * 1000));
  const note = `${good.length} migrations, ${failures} failed; ${load()}`;
  printFigure(
    { bench: BENCH, name: `${label}: pause p50`, value: pauses.p50, unit: 'ms', bound: 20, note },
    44,
  );
  printFigure({ bench: BENCH, name: `${label}: pause p99`, value: pauses.p99, unit: 'ms', note }, 44);
  printFigure(
    {
      bench: BENCH,
      name: `${label}: total p50 vs (mem+overlay)/bw`,
      value: totals.p50,
      unit: 'ms',
      bound: Math.round(bounds.p50 * 1.2),
      note: `moved ${(good[0].bytes / MiB).toFixed(1)} MiB at ${(rate / MiB).toFixed(1)} MiB/s${capBytes ? ' (cap)' : ' (link)'}; bound = 1.2 × ${bounds.p50.toFixed(0)} ms; ${note}`,
    },
    44,
  );
}

try {
  console.log(`# ${BENCH}: ${memoryMiB} MiB guest, TCG, libp2p (pnet + Noise) on loopback; ${load()}`);
  const link = await linkRate();
  printFigure(
    { bench: BENCH, name: 'link rate (one stream)', value: Math.round(link / MiB), unit: 'MiB/s' },
    44,
  );
  const cap = capMiB * MiB;
  const scenarios: [string, string, number | undefined][] = [
    ['idle', '', undefined],
    [`idle, cap ${capMiB} MiB/s`, '', cap],
    [`dirty ${dirtyMiB} MiB`, ` xenos.dirty=${dirtyMiB}`, undefined],
    [`dirty ${dirtyMiB} MiB, cap ${capMiB} MiB/s`, ` xenos.dirty=${dirtyMiB}`, cap],
  ];
  for (const [label, cmdline, capBytes] of scenarios) {
    if (runs > 0 && (only === undefined || label === only))
      await scenario(label, cmdline, capBytes, link, runs);
  }
  if (count > 0) {
    const drivers = [driver(dirs[0], 'xenos-bench-mig-a'), driver(dirs[1], 'xenos-bench-mig-b')];
    for (const d of drivers) await d.start();
    const s = spec('consecutive');
    let info = await drivers[0].startDomain(s);
    await waitForBody(urlOf(info), 'count=', 120_000);
    let failures = 0;
    let here = 0;
    for (let i = 0; i < count; i++) {
      // A failed move leaves the guest on the source: the next one starts from there again.
      const o = await migrateOnce(drivers[here], drivers[1 - here], s, info);
      if (o.info) {
        info = o.info;
        here = 1 - here;
      }
      if (!o.ok) {
        failures++;
        console.log(`  consecutive #${i + 1}: FAILED: ${o.error}`);
      }
    }
    printFigure(
      {
        bench: BENCH,
        name: `${count} consecutive migrations: failures`,
        value: failures,
        unit: 'failures',
        bound: 0,
        note: load(),
      },
      44,
    );
    for (const d of drivers) await d.destroy(s.id).catch(() => {});
    for (const d of drivers) await d.stop();
  }
} finally {
  await pair.stop();
  for (const node of nodes) await node.stop();
  await rm(p2pRoot, { recursive: true, force: true });
  await harness.cleanup();
}
