// Starting one run of a prepared process-driver domain (under the driver's lock for the domain): reap a
// launch xenosd did not live to record, check the sandbox, allocate host ports, plan the run
// (launch-plan.ts), set up its cgroups, spawn the detached supervisor (supervisor.ts) and record its pid
// and start time — between `beginLaunch` and `endLaunch`, so a kill -9 in between never leaves a second,
// unrecorded copy running (interrupted-launch.ts).

import { chmod, mkdir, rm } from 'node:fs/promises';
import type { Log } from '../../log/logger.ts';
import type { DomainResources, DomainSpec, LimitsReport } from '../driver.ts';
import { StartError } from '../errors.ts';
import type { Sandbox } from '../sandbox/sandbox.ts';
import type { Cgroups } from './cgroup.ts';
import { type DomainPaths, type DomainRecord, type RunRecord, writeRecord } from './domain-record.ts';
import { beginLaunch, endLaunch, reapInterruptedLaunch } from './interrupted-launch.ts';
import { type LaunchContext, type LaunchPlan, planLaunch } from './launch-plan.ts';
import type { PortBook } from './port-book.ts';
import { readStatSync } from './proc.ts';
import { type LogRotation, spawnSupervised } from './supervisor.ts';

export interface LaunchDomainContext {
  /** Absent: unsandboxed (--unsafe-no-sandbox). */
  sandbox?: Sandbox;
  /** Told what the sandbox probe said, so the host's conditions follow a sandbox that came or went. */
  sandboxChanged(usable: boolean): Promise<void>;
  ports: PortBook;
  cgroups?: Cgroups;
  path: string;
  advertiseAddress: string;
  rotation: LogRotation;
  killTimeoutMs: number;
  log: Log;
  /** What the supervisor runs. Default: the process driver's plan (launch-plan.ts); the QEMU driver plans
   *  a QEMU command line in the same sandbox. */
  plan?(
    spec: DomainSpec,
    paths: DomainPaths,
    ports: Record<string, number>,
    ctx: LaunchContext,
  ): Promise<LaunchPlan & { limits?(cgroup: LimitsReport): LimitsReport }>;
  /** The limits put on the domain's cgroups. Default: the spec's resources. */
  cgroupResources?(spec: DomainSpec): DomainResources | undefined;
}

export async function launchDomain(
  rec: DomainRecord,
  paths: DomainPaths,
  ctx: LaunchDomainContext,
): Promise<DomainRecord> {
  const spec = rec.spec;
  await reapInterruptedLaunch(paths, rec.run, { timeoutMs: ctx.killTimeoutMs });
  let sandboxed: Parameters<typeof planLaunch>[3]['sandbox'];
  if (ctx.sandbox) {
    const status = await ctx.sandbox.probe();
    await ctx.sandboxChanged(status.usable);
    await ctx.sandbox.ensureUsable(spec.id);
    sandboxed = { sandbox: ctx.sandbox, status, identity: rec.identity };
  }
  const allocated = await ctx.ports.allocate(spec, rec.ports, paths.dir);
  await mkdir(paths.logs, { recursive: true, mode: 0o700 });
  await mkdir(paths.run, { recursive: true, mode: 0o700 });
  await chmod(paths.dir, 0o700);
  const plan: Awaited<ReturnType<NonNullable<LaunchDomainContext['plan']>>> = await (ctx.plan ?? planLaunch)(
    spec,
    paths,
    allocated,
    {
      path: ctx.path,
      advertiseAddress: ctx.advertiseAddress,
      sandbox: sandboxed,
    },
  );
  await rm(paths.exitFile, { force: true });
  await rm(paths.childPidFile, { force: true });
  const cg = ctx.cgroups
    ? await ctx.cgroups.setup(spec.id, ctx.cgroupResources ? ctx.cgroupResources(spec) : spec.resources)
    : { procsFiles: [], limits: { enforced: false, reason: 'cgroups are turned off in this driver' } };

  await beginLaunch(paths);
  const child = spawnSupervised({
    command: plan.argv,
    cwd: plan.spawnCwd,
    env: plan.env,
    runDir: paths.run,
    stderrPath: paths.stderr,
    rotation: ctx.rotation,
    cgroupProcsFiles: cg.procsFiles,
    sandboxStatus: plan.isolation.sandboxed,
  });
  child.on('error', (err) =>
    ctx.log.error({ err, domain: spec.id }, `domain ${spec.id}: supervisor: ${err.message}`),
  );
  // Read the start time now, synchronously: until the event loop turns, even an instantly exited
  // supervisor is an unreaped zombie of ours, so its /proc entry is still there.
  const stat0 = child.pid ? readStatSync(child.pid) : undefined;
  if (!child.pid || !stat0) {
    throw new StartError(spec.id, `could not start /bin/sh for ${plan.hostCwd}; see the driver log`);
  }
  const run: RunRecord = {
    pid: child.pid,
    startTime: stat0.startTime,
    startedAt: new Date().toISOString(),
    command: plan.command,
    env: plan.env,
    cwd: plan.hostCwd,
    workDir: plan.workDir,
    limits: plan.limits ? plan.limits(cg.limits) : cg.limits,
    isolation: plan.isolation,
  };
  if (rec.run) rec.restartCount += 1;
  rec.run = run;
  rec.ports = allocated;
  await writeRecord(paths, rec);
  await endLaunch(paths);
  return rec;
}
