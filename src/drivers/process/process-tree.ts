// Finding and signalling the processes of a process-driver domain from outside it. The tree is
//   supervisor sh ─┬─ stdout log pump (sh + head)
//                  └─ subshell ─┬─ stderr log pump (sh + head)
//                               └─ subshell ── bwrap (outside) ── sandbox pid 1 (bwrap's reaper) ── the service
// A polite stop must reach the service, and bwrap forwards no signals: a SIGTERM to bwrap kills it, and its
// --die-with-parent then SIGKILLs the sandbox before the service could finish. So the polite stop goes to
// every process inside the sandbox's PID namespace but its pid 1 — the descendants of pid 1, orphans
// included (the kernel reparents them to it) — as a process-group signal did before the sandbox. When the
// service ends, pid 1 ends with its status, and the kernel kills whatever is left in the namespace. The
// forced stop SIGKILLs every descendant of the supervisor and the supervisor itself.
//
// Every pid the driver acts on is verified against the kernel's view: the sandbox's pid 1 must be a child of
// the recorded bwrap, which must be in the session of the recorded supervisor (pid + start time), so a pid
// file cannot point the driver at a process outside the domain.

import { readdir, readFile } from 'node:fs/promises';
import { type ProcStat, readStat } from './proc.ts';

async function allStats(): Promise<ProcStat[]> {
  const out: ProcStat[] = [];
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const st = await readStat(Number(name));
    if (st && st.state !== 'Z' && st.state !== 'X') out.push(st);
  }
  return out;
}

/** Every live descendant of `root` (not `root` itself), parents before children. */
export async function descendants(root: number): Promise<ProcStat[]> {
  const byParent = new Map<number, ProcStat[]>();
  for (const st of await allStats()) {
    const list = byParent.get(st.ppid) ?? [];
    list.push(st);
    byParent.set(st.ppid, list);
  }
  const out: ProcStat[] = [];
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    for (const child of byParent.get(pid) ?? []) {
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

/** Whether `pid` has started a child: one read of the kernel's list of its children, or, where the kernel
 *  keeps none (built without CONFIG_PROC_CHILDREN), a scan of /proc. */
export async function hasChild(pid: number): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim() !== '';
  } catch {
    return (await descendants(pid)).length > 0;
  }
}

/** The sandbox's pid 1 as `initPid` names it, if it really is the child of `bwrapPid`, itself in the
 *  session of `supervisorPid` (the supervisor's pipeline puts a subshell between them). */
export async function verifiedSandboxInit(
  supervisorPid: number,
  bwrapPid: number | undefined,
  initPid: number | undefined,
): Promise<number | undefined> {
  if (!bwrapPid || !initPid) return undefined;
  const [bwrap, init] = await Promise.all([readStat(bwrapPid), readStat(initPid)]);
  if (!bwrap || !init || bwrap.session !== supervisorPid || init.ppid !== bwrapPid) return undefined;
  if (init.state === 'Z' || init.state === 'X') return undefined;
  return initPid;
}

export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Sends `signal` to every process inside the sandbox but its pid 1; returns how many. */
export async function signalSandbox(initPid: number, signal: NodeJS.Signals): Promise<number> {
  const inside = await descendants(initPid);
  for (const p of inside) signalPid(p.pid, signal);
  return inside.length;
}

/** SIGKILLs the supervisor and everything below it, children first so none is left to fork. */
export async function killTree(supervisorPid: number): Promise<void> {
  const below = await descendants(supervisorPid);
  for (const p of below.reverse()) signalPid(p.pid, 'SIGKILL');
  signalPid(supervisorPid, 'SIGKILL');
}
