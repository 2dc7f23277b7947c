// Benchmark: how long the demo guest (npm run guest-image) takes to boot under TCG, from starting QEMU to
// the `ready` line on its console (the guest prints it once its HTTP service answers), with 128 MiB and one
// vCPU. Runs alternate between the uncompressed kernel (vmlinux, PVH boot, what manifests/vm-web uses) and
// the compressed one (vmlinuz), one guest at a time. The bound is the 4 s to userspace measured for a
// busybox initramfs on these machines; the `ready` line comes after userspace has mounted the disk, set up
// the network and started the service, so it includes more than that bound's boot.
//
//   node bench/guest-boot.ts [--runs 5]

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultGuestDir, ensureGuestImage } from '../scripts/guest-image/guest-image.ts';
import { printFigure } from './lib/figures.ts';
import { timePlainBoot } from './lib/plain-qemu-boot.ts';
import { summarise } from './lib/stats.ts';

const BENCH = 'guest-boot';
const BOUND_MS = 4000;
const { values: flags } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(flags.runs);

const image = defaultGuestDir();
await ensureGuestImage({ dir: image, log: (l) => console.log(l) });
const work = mkdtempSync(join(tmpdir(), 'xenos-bench-guest-'));

function bootOnce(kernel: string, run: number): Promise<number> {
  return timePlainBoot({
    image,
    kernel,
    prefix: join(work, `${kernel}-${run}`),
    ready: (consoleFile) => {
      try {
        return readFileSync(consoleFile, 'utf8').split(/\r?\n/).includes('ready');
      } catch {
        return false;
      }
    },
    label: `"ready" from the guest (${kernel})`,
    intervalMs: 10,
  });
}

const times: Record<string, number[]> = { vmlinux: [], vmlinuz: [] };
const loads: number[] = [];
try {
  for (let run = 0; run < runs; run++) {
    for (const kernel of ['vmlinux', 'vmlinuz']) {
      loads.push(loadavg()[0]);
      const ms = await bootOnce(kernel, run);
      times[kernel].push(ms);
      console.log(
        `  run ${run + 1} ${kernel}: ready after ${ms.toFixed(0)} ms (load ${loadavg()[0].toFixed(2)})`,
      );
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const note = `${runs} runs, TCG, 128 MiB, 1 vCPU, load avg ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)} on ${
  cpus().length
} cores`;
for (const kernel of ['vmlinux', 'vmlinuz']) {
  const s = summarise(times[kernel]);
  printFigure(
    { bench: BENCH, name: `start → ready p50 (${kernel})`, value: s.p50, unit: 'ms', bound: BOUND_MS, note },
    34,
  );
  printFigure(
    { bench: BENCH, name: `start → ready max (${kernel})`, value: s.max, unit: 'ms', bound: BOUND_MS, note },
    34,
  );
}
