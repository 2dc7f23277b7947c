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

import { existsSync } from 'node:fs';
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

/** Whether this kernel lists each thread's children (CONFIG_PROC_CHILDREN): checked once, on ourselves. */
const KERNEL_LISTS_CHILDREN = existsSync(`/proc/${process.pid}/task/${process.pid}/children`);

/** The children of `pid`, from the kernel's list of each of its threads (a child belongs to the thread that
 *  forked it); empty when it is gone. */
async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const lists = await Promise.all(
    tasks.map((tid) => readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '')),
  );
  return lists.flatMap((l) =>
    l
      .split(' ')
      .filter((t) => t !== '')
      .map(Number),
  );
}

/** Every live descendant of `root` (not `root` itself), parents before children: read down the tree from
 *  the kernel's lists of children (a few reads per process of the domain), or, where the kernel keeps
 *  none, from one scan of all of /proc (hundreds of reads on a busy host, for every stop and stats call). */
export async function descendants(root: number): Promise<ProcStat[]> {
  if (!KERNEL_LISTS_CHILDREN) return descendantsByScan(root);
  const out: ProcStat[] = [];
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    const stats = await Promise.all((await childrenOf(pid)).map((child) => readStat(child)));
    for (const st of stats) {
      // A child that ended (or a pid reused) since the list was read is not one.
      if (!st || st.ppid !== pid || st.state === 'Z' || st.state === 'X') continue;
      out.push(st);
      queue.push(st.pid);
    }
  }
  return out;
}

/** The same from one scan of all of /proc (the fallback; exported for the test that compares the two). */
export async function descendantsByScan(root: number): Promise<ProcStat[]> {
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

/** Whether `pid` has started a child: the kernel's lists of its threads' children, or, where it keeps
 *  none, a scan of /proc. */
export async function hasChild(pid: number): Promise<boolean> {
  if (!KERNEL_LISTS_CHILDREN) return (await descendantsByScan(pid)).length > 0;
  return (await childrenOf(pid)).length > 0;
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
