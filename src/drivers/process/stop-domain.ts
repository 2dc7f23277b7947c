// Stopping a process-driver domain, as the driver does it under the domain's lock: SIGTERM to the service
// and all it forked (inside the sandbox, every process but its pid 1: bwrap forwards no signals; see
// process-tree.ts), the grace period, then SIGKILL of the supervisor's whole tree, its session and its
// cgroups; a stop is marked in the record first, so the domain reads as stopped on request, not crashed.

import { DriverError } from '../errors.ts';
import { waitUntil } from '../wait-until.ts';
import type { Cgroups } from './cgroup.ts';
import { type DomainPaths, type DomainRecord, type RunRecord, writeRecord } from './domain-record.ts';
import { childPid, domainAlive, waitForSandboxInit } from './domain-state.ts';
import { reapInterruptedLaunch } from './interrupted-launch.ts';
import { isAlive, sessionProcesses } from './proc.ts';
import { descendants, killTree, signalPid, signalSandbox } from './process-tree.ts';

export interface StopContext {
  cgroups?: Cgroups;
  /** How long to wait for a SIGKILLed tree to be gone. */
  killTimeoutMs: number;
  /** Asks the domain to stop (default: SIGTERM to the service and all it forked; the QEMU driver asks the
   *  guest over QMP); the force after the grace period is the same for every domain. */
  politeStop?(paths: DomainPaths, run: RunRecord, graceMs: number, signal?: AbortSignal): Promise<void>;
}

/** Stops the domain of `rec` (a no-op when it does not run); throws StopFailed when it outlives SIGKILL. */
export async function stopDomainTree(
  paths: DomainPaths,
  rec: DomainRecord,
  graceMs: number,
  ctx: StopContext,
  signal?: AbortSignal,
): Promise<void> {
  const run = rec.run;
  await reapInterruptedLaunch(paths, run, { timeoutMs: ctx.killTimeoutMs, signal });
  if (!run || !(await domainAlive(paths, run))) return;
  run.stopRequestedAt = new Date().toISOString();
  await writeRecord(paths, rec);
  const supervisorAlive = () => isAlive(run.pid, run.startTime);
  if (graceMs > 0 && (await supervisorAlive())) {
    await (ctx.politeStop ?? politeStop)(paths, run, graceMs, signal);
    await waitUntil(async () => !(await domainAlive(paths, run)), { timeoutMs: graceMs, signal });
  }
  if (await supervisorAlive()) {
    run.forcedAt = new Date().toISOString();
    await writeRecord(paths, rec);
  }
  // Whatever is left of the tree (the service, or things it left behind) is killed outright.
  if (await supervisorAlive()) await killTree(run.pid);
  for (const p of await sessionProcesses(run.pid)) signalPid(p.pid, 'SIGKILL');
  await ctx.cgroups?.kill(rec.spec.id);
  const gone = await waitUntil(async () => !(await domainAlive(paths, run)), {
    timeoutMs: ctx.killTimeoutMs,
    signal,
  });
  if (!gone) {
    throw new DriverError(
      'StopFailed',
      `domain ${rec.spec.id}: still alive ${ctx.killTimeoutMs} ms after SIGKILL (pid ${run.pid})`,
      rec.spec.id,
    );
  }
}

/** SIGTERM to the service and all it forked: inside the sandbox, every process but its pid 1 (see
 *  process-tree.ts); unsandboxed, the supervisor's child and its descendants. */
async function politeStop(
  paths: DomainPaths,
  run: RunRecord,
  graceMs: number,
  signal?: AbortSignal,
): Promise<void> {
  if (run.isolation?.sandboxed) {
    // A sandbox still starting gets its SIGTERM once it is up; one that never comes up is forced.
    const init = await waitForSandboxInit(paths, run, { timeoutMs: graceMs, signal });
    if (init !== undefined) await signalSandbox(init, 'SIGTERM');
    return;
  }
  const child = await childPid(paths, run);
  if (child === undefined) return;
  signalPid(child, 'SIGTERM');
  for (const p of await descendants(child)) signalPid(p.pid, 'SIGTERM');
}
