// Memory and CPU of running processes as Linux /proc shows them (VmRSS, utime + stime), for the
// footprint benches: one reading, an idle average over a window, and the processes of the process
// driver's domains under a xenosd data dir (each domain is the process tree under its supervisor).

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DomainPaths, readRecord } from '../../src/drivers/process/domain-record.ts';
import { CLOCK_TICKS_PER_SECOND, isAlive, readStat, residentBytes } from '../../src/drivers/process/proc.ts';

export const MB = 1024 * 1024;

export interface Usage {
  /** Sum of VmRSS of the processes, bytes. */
  rssBytes: number;
  /** Sum of utime + stime, clock ticks. */
  cpuTicks: number;
  /** How many of the processes were alive. */
  alive: number;
}

/** RSS and CPU time of `pids` right now (processes that are gone count as 0). */
export async function usageOf(pids: readonly number[]): Promise<Usage> {
  let rssBytes = 0;
  let cpuTicks = 0;
  let alive = 0;
  for (const pid of pids) {
    const stat = await readStat(pid);
    if (!stat || stat.state === 'Z') continue;
    alive++;
    cpuTicks += stat.cpuTicks;
    rssBytes += await residentBytes(pid);
  }
  return { rssBytes, cpuTicks, alive };
}

export interface IdleSample {
  /** Mean and max of the summed RSS over the window, MB. */
  rssMeanMB: number;
  rssMaxMB: number;
  /** CPU used over the window, percent of one core. */
  cpuPercent: number;
  seconds: number;
}

/** Samples the summed RSS of `pids()` every `everyMs` for `durationMs` and the CPU used in between. */
export async function sampleIdle(
  pids: () => Promise<number[]> | number[],
  opts: { durationMs: number; everyMs?: number; signal?: AbortSignal },
): Promise<IdleSample> {
  const everyMs = opts.everyMs ?? 500;
  const first = await usageOf(await pids());
  const t0 = performance.now();
  const rss: number[] = [first.rssBytes];
  let last = first;
  while (performance.now() - t0 < opts.durationMs) {
    opts.signal?.throwIfAborted();
    await new Promise((r) => setTimeout(r, everyMs));
    last = await usageOf(await pids());
    rss.push(last.rssBytes);
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    rssMeanMB: rss.reduce((a, b) => a + b, 0) / rss.length / MB,
    rssMaxMB: Math.max(...rss) / MB,
    cpuPercent: ((last.cpuTicks - first.cpuTicks) / CLOCK_TICKS_PER_SECOND / seconds) * 100,
    seconds,
  };
}

/** The pids of every live process of every process-driver domain under a xenosd data dir: each domain's
 *  supervisor and everything below it (log pumps, bwrap, the sandbox's processes: the service sits in a
 *  session of its own inside the sandbox, so the supervisor's session alone would miss it). */
export async function domainPids(dataDir: string): Promise<number[]> {
  const domainsDir = join(dataDir, 'domains');
  let ids: string[];
  try {
    ids = await readdir(domainsDir);
  } catch {
    return [];
  }
  const roots: number[] = [];
  for (const id of ids) {
    const rec = await readRecord(new DomainPaths(domainsDir, id)).catch(() => undefined);
    const run = rec?.run;
    if (run && (await isAlive(run.pid, run.startTime))) roots.push(run.pid);
  }
  return treesOf(roots);
}

/** `roots` and all their live descendants, from one pass over /proc (a pass per root is slow with a
 *  hundred of them). */
export async function treesOf(roots: number[]): Promise<number[]> {
  if (roots.length === 0) return [];
  const children = new Map<number, number[]>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readStat(Number(name));
    if (!stat || stat.state === 'Z') continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(stat.pid);
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const queue = [...roots];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}
