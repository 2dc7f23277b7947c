// Benchmark: what the QEMU driver adds to a guest's boot. The demo guest (npm run guest-image) started
// through QemuDriver.startDomain (record, qcow2 overlay, port lease, cgroups, bubblewrap as its own uid,
// the supervisor, QEMU's seccomp sandbox) until its service answers GET /name on the forwarded port, beside
// the same guest started by plain QEMU until the same answer, alternately in the same run, one guest at a
// time (TCG, 128 MiB, one vCPU, vmlinux). Also the polite stop through the driver (ACPI power button →
// QEMU exits 0). The bound: the driver's start → answer within 1.2 × plain QEMU's.
//
//   node bench/qemu-driver-boot.ts [--runs 5]

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultGuestDir, ensureGuestImage } from '../scripts/guest-image/guest-image.ts';
import { domainIdFor } from '../src/drivers/driver.ts';
import { QemuDriver } from '../src/drivers/qemu/qemu-driver.ts';
import { printFigure } from './lib/figures.ts';
import { timePlainBoot } from './lib/plain-qemu-boot.ts';
import { summarise } from './lib/stats.ts';
import { until } from './lib/wait.ts';

const BENCH = 'qemu-driver-boot';
const { values: flags } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(flags.runs);

const image = defaultGuestDir();
await ensureGuestImage({ dir: image, log: (l) => console.log(l) });
const work = mkdtempSync(join(tmpdir(), 'xenos-bench-qemu-driver-'));

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.ok && (await res.text()).trim() === 'bench';
  } catch {
    return false;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function plainBoot(run: number): Promise<number> {
  const port = await freePort();
  return timePlainBoot({
    image,
    prefix: join(work, `plain-${run}`),
    httpPort: port,
    ready: () => answers(`http://127.0.0.1:${port}/name`),
    label: 'plain QEMU guest answers',
  });
}

async function driverBoot(driver: QemuDriver, run: number): Promise<{ startMs: number; stopMs: number }> {
  const instance = { namespace: 'bench', name: 'bench', uid: `b${run.toString().padStart(7, '0')}` };
  const spec = {
    id: domainIdFor(instance),
    instance,
    image: { path: image, format: 'directory' as const },
    boot: { kernel: 'vmlinux', initrd: 'initrd.img', cmdline: 'console=ttyS0 xenos.name=bench' },
    ports: [{ name: 'http', port: 80, protocol: 'TCP' as const }],
    resources: { memoryBytes: 128 * 1024 * 1024, vcpus: 1 },
  };
  try {
    const started = performance.now();
    const info = await driver.startDomain(spec);
    const ep = info.endpoints[0];
    await until(() => answers(`http://${ep.address}:${ep.port}/name`), 120_000, 'driver guest answers', 20);
    const startMs = performance.now() - started;
    const stopping = performance.now();
    const stopped = await driver.stopDomain(spec.id, { graceMs: 60_000 });
    if (stopped?.exitCode !== 0) throw new Error(`the guest did not power off cleanly: ${stopped?.message}`);
    return { startMs, stopMs: performance.now() - stopping };
  } finally {
    await driver.destroy(spec.id);
  }
}

const plain: number[] = [];
const viaDriver: number[] = [];
const stops: number[] = [];
const loads: number[] = [];
const driver = new QemuDriver({}, { dataDir: join(work, 'data') });
try {
  await driver.start();
  for (let run = 0; run < runs; run++) {
    loads.push(loadavg()[0]);
    const p = await plainBoot(run);
    plain.push(p);
    loads.push(loadavg()[0]);
    const d = await driverBoot(driver, run);
    viaDriver.push(d.startMs);
    stops.push(d.stopMs);
    console.log(
      `  run ${run + 1}: plain QEMU ${p.toFixed(0)} ms, driver ${d.startMs.toFixed(0)} ms, polite stop ${d.stopMs.toFixed(0)} ms (load ${loadavg()[0].toFixed(2)})`,
    );
  }
} finally {
  await driver.stop();
  rmSync(work, { recursive: true, force: true });
}
const note = `${runs} runs each, TCG, 128 MiB, 1 vCPU, vmlinux, load avg ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)} on ${
  cpus().length
} cores`;
const p = summarise(plain);
const d = summarise(viaDriver);
const s = summarise(stops);
printFigure({ bench: BENCH, name: 'plain QEMU start → answer p50', value: p.p50, unit: 'ms', note }, 38);
printFigure(
  {
    bench: BENCH,
    name: 'driver start → answer p50',
    value: d.p50,
    unit: 'ms',
    bound: Math.round(1.2 * p.p50),
    note,
  },
  38,
);
printFigure(
  {
    bench: BENCH,
    name: 'driver start → answer max',
    value: d.max,
    unit: 'ms',
    bound: Math.round(1.2 * p.max),
    note,
  },
  38,
);
printFigure({ bench: BENCH, name: 'driver polite stop p50', value: s.p50, unit: 'ms', note }, 38);
