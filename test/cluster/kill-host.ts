// A host dying as a machine does, for tests and benches: kill -9 of its xenosd and of every process of its
// domains (a process domain outlives a killed coordinator otherwise) — every live process whose command
// line or environment names the host's data dir.

import type { ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** Pids of the live processes whose command line or environment mentions `text`. */
async function processesMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      const seen = [await readFile(`/proc/${entry}/cmdline`, 'utf8')];
      seen.push(await readFile(`/proc/${entry}/environ`, 'utf8').catch(() => ''));
      if (seen.some((t) => t.includes(text))) pids.push(Number(entry));
    } catch {
      // gone while we looked
    }
  }
  return pids;
}

/** Kills the host's xenosd and its domains; resolves once none of them is left. */
export async function killHost(h: {
  name: string;
  child: ChildProcess;
  exited: Promise<unknown>;
  dataDir: string;
}): Promise<void> {
  h.child.kill('SIGKILL');
  await h.exited;
  await killProcessesMentioning(`${h.dataDir}/`, h.name);
}

/** Kills (-9) every live process whose command line or environment mentions `text` (a data dir: the
 *  domains of its hosts), until none is left; `who` names them in the error when some outlive 10 s. */
export async function killProcessesMentioning(text: string, who: string): Promise<void> {
  // Plain polling (no test helper): benches run this outside vitest.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const left = await processesMentioning(text);
    if (left.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(`${who}: processes ${left.join(', ')} still alive after kill -9`);
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    await sleep(50);
  }
}
