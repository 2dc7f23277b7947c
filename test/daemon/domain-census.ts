// Test helper: which domains really run, counted two independent ways, for the crash trials.
//  - /proc: every live process whose environment carries `marker` (an env var the trial's template sets,
//    so only this run's domains count, never another test's), grouped by its XENOS_INSTANCE_UID. Only
//    the service itself counts (its command name `comm`), not the supervisor shell around it.
//  - the process driver's own list() over the data dir (read only), running domains grouped by uid.
// A domain that /proc sees and the driver does not is one nobody can adopt.

import { readdir, readFile } from 'node:fs/promises';
import { readStat } from '../../src/drivers/process/proc.ts';
import { ProcessDriver } from '../../src/drivers/process/process-driver.ts';

export interface Census {
  /** uid → pids of live service processes (by /proc). */
  processes: Map<string, number[]>;
  /** uid → ids of running domains (by the driver's list). */
  domains: Map<string, string[]>;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  m.set(k, [...(m.get(k) ?? []), v]);
}

/** Live (not zombie) processes named `comm` whose environment has `marker` (NAME=VALUE), by instance uid. */
export async function serviceProcesses(marker: string, comm: string): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((await readFile(`/proc/${entry}/comm`, 'utf8')).trim() !== comm) continue;
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      const env = (await readFile(`/proc/${entry}/environ`, 'utf8')).split('\0');
      if (!env.includes(marker)) continue;
      const uid = env.find((e) => e.startsWith('XENOS_INSTANCE_UID='))?.slice('XENOS_INSTANCE_UID='.length);
      push(out, uid ?? '(none)', Number(entry));
    } catch {
      // gone while we looked
    }
  }
  return out;
}

/**
 * The pids of `pids` that were alive at one same moment. A /proc scan is not atomic: a domain restarted
 * while it ran shows its old and its new process although they never lived at once. Reading every pid
 * twice over does: a pid alive (same start time) in both passes lived from its first read to its second,
 * and the passes' reads interleave, so any two such pids overlapped.
 */
export async function aliveTogether(pids: number[]): Promise<number[]> {
  const pass = () => Promise.all(pids.map((pid) => readStat(pid)));
  const first = await pass();
  const second = await pass();
  return pids.filter((_, i) => {
    const a = first[i];
    const b = second[i];
    return a && b && a.state !== 'Z' && b.state !== 'Z' && a.startTime === b.startTime;
  });
}

/** `pid (ppid P, session S, started T)` for each pid, to tell copies apart in a report. */
export async function describePids(pids: number[]): Promise<string> {
  const parts = await Promise.all(
    pids.map(async (pid) => {
      const st = await readStat(pid);
      return st
        ? `${pid} (ppid ${st.ppid}, session ${st.session}, started ${st.startTime})`
        : `${pid} (gone)`;
    }),
  );
  return parts.join(', ');
}

export async function takeCensus(dataDir: string, marker: string, comm: string): Promise<Census> {
  const driver = new ProcessDriver({}, { dataDir, cgroups: false });
  const domains = new Map<string, string[]>();
  for (const d of await driver.list()) if (d.state === 'running') push(domains, d.instance.uid, d.id);
  return { processes: await serviceProcesses(marker, comm), domains };
}
