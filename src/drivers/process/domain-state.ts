// What a process-driver domain is doing, read from its record and the kernel: whether its supervisor (or,
// unsandboxed, a service that outlived it) still runs, the sandbox's pid 1, and how a finished run ended
// (the supervisor's exit file, bwrap's status, the driver's own stop marks). Pure reads; no signals.

import { readFile, stat } from 'node:fs/promises';
import type { DomainEndpoint, DomainInfo, DriverName } from '../driver.ts';
import { waitUntil } from '../wait-until.ts';
import type { DomainPaths, DomainRecord, RunRecord } from './domain-record.ts';
import { readOptional } from './domain-record.ts';
import { isAlive, readStat } from './proc.ts';
import { hasChild, verifiedSandboxInit } from './process-tree.ts';
import { parseExitStatus, parseSandboxStatus } from './supervisor.ts';

/** The supervisor's child (bwrap, or the service unsandboxed) if it lives in the supervisor's session. */
export async function childPid(paths: DomainPaths, run: RunRecord): Promise<number | undefined> {
  const text = await readOptional(paths.childPidFile);
  const pid = text ? Number.parseInt(text, 10) : Number.NaN;
  if (!Number.isInteger(pid)) return undefined;
  const st = await readStat(pid);
  return st && st.session === run.pid && st.state !== 'Z' ? pid : undefined;
}

export async function domainAlive(paths: DomainPaths, run: RunRecord): Promise<boolean> {
  return (await isAlive(run.pid, run.startTime)) || (await childPid(paths, run)) !== undefined;
}

/** The host pid of the running sandbox's pid 1, verified against the process tree. */
export async function sandboxInit(paths: DomainPaths, run: RunRecord): Promise<number | undefined> {
  if (!run.isolation?.sandboxed || !(await isAlive(run.pid, run.startTime))) return undefined;
  const status = parseSandboxStatus((await readOptional(paths.sandboxStatusFile)) ?? '');
  return verifiedSandboxInit(run.pid, await childPid(paths, run), status.initPid);
}

/** The sandbox's pid 1, waiting up to `timeoutMs` for a just-started sandbox to come up (undefined when
 *  the supervisor ends first or the time runs out). With `setUp`, only once the sandbox is set up: bwrap
 *  reports pid 1 as soon as it is cloned, and pid 1 makes its mounts before it starts the command, so a
 *  command entering its namespaces earlier sees them half made (an exec health check right after a start
 *  failed `test -f` so). Pid 1 having a child means the mounts are done. */
export async function waitForSandboxInit(
  paths: DomainPaths,
  run: RunRecord,
  options: { timeoutMs: number; signal?: AbortSignal; setUp?: boolean },
): Promise<number | undefined> {
  let init: number | undefined;
  let up = false;
  await waitUntil(async () => {
    init = await sandboxInit(paths, run);
    up = init !== undefined && (!options.setUp || (await hasChild(init)));
    return up || !(await isAlive(run.pid, run.startTime));
  }, options);
  return up ? init : undefined;
}

/** `guestPortInside`: the service listens on the template's port inside the domain (a VM behind a port
 *  forward), not on the allocated host port (a process). */
export function endpoints(
  rec: DomainRecord,
  advertiseAddress: string,
  guestPortInside = false,
): DomainEndpoint[] {
  const out: DomainEndpoint[] = [];
  for (const p of rec.spec.ports ?? []) {
    const port = rec.ports[p.name];
    if (port === undefined) continue;
    const ep: DomainEndpoint = {
      name: p.name,
      address: advertiseAddress,
      port,
      guestPort: guestPortInside ? p.port : port,
      protocol: p.protocol,
    };
    const app = p.appProtocol ?? p.name;
    if (app === 'http' || app === 'https') ep.url = `${app}://${advertiseAddress}:${port}/`;
    out.push(ep);
  }
  return out;
}

/** A domain stopped on request, and how the service ended when the supervisor recorded it (`how`). A forced
 *  stop is a SIGKILL whatever was recorded: the tree is killed children first, so the supervisor may still
 *  write its child's end (as bwrap saw it) before its own SIGKILL lands. */
function stoppedOnRequest(info: DomainInfo, run: RunRecord, how?: string): DomainInfo {
  if (run.forcedAt) {
    const message = 'stopped on request; forced with SIGKILL after the grace period';
    return {
      ...info,
      state: 'stopped',
      signal: 'SIGKILL',
      message: how ? `${message} (it ${how})` : message,
    };
  }
  return { ...info, state: 'stopped', message: how ? `stopped on request; it ${how}` : 'stopped on request' };
}

/** The last line bwrap wrote on the domain's stderr (why it could not make the sandbox). */
async function bwrapComplaint(paths: DomainPaths): Promise<string | undefined> {
  const text = await readFile(paths.stderr, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.startsWith('bwrap:'))
    .pop();
}

/** How a driver's domains differ in their description (the QEMU driver reuses this one). */
export interface DescribeOptions {
  driver?: DriverName;
  /** See endpoints(). */
  guestPortInside?: boolean;
}

export async function describeDomain(
  paths: DomainPaths,
  rec: DomainRecord,
  advertiseAddress: string,
  options: DescribeOptions = {},
): Promise<DomainInfo> {
  const info: DomainInfo = {
    id: rec.spec.id,
    driver: options.driver ?? 'process',
    instance: rec.spec.instance,
    state: 'prepared',
    restartCount: rec.restartCount,
    endpoints: endpoints(rec, advertiseAddress, options.guestPortInside),
  };
  if (rec.preparedDigest) info.imageDigest = rec.preparedDigest;
  if (rec.disk) info.disk = rec.disk;
  const run = rec.run;
  if (!run) return info;
  info.pid = run.pid;
  info.startedAt = run.startedAt;
  info.limits = run.limits;
  if (run.isolation) info.isolation = run.isolation;
  if (await isAlive(run.pid, run.startTime)) return { ...info, state: 'running' };
  if ((await childPid(paths, run)) !== undefined) {
    return {
      ...info,
      state: 'running',
      message: 'the supervisor is gone but the service still runs; its exit code will not be known',
    };
  }
  const exitText = await readOptional(paths.exitFile);
  const exit = exitText !== undefined ? parseExitStatus(exitText) : undefined;
  const exitTime = exit
    ? await stat(paths.exitFile).then(
        (s) => s.mtime.toISOString(),
        () => undefined,
      )
    : undefined;
  if (exit) {
    Object.assign(info, { exitCode: exit.exitCode, finishedAt: exitTime });
    if (exit.signal) info.signal = exit.signal;
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
    if (run.stopRequestedAt) return stoppedOnRequest(info, run, how);
    if (exit.exitCode === 0) return { ...info, state: 'stopped', message: 'exited with code 0' };
    if (run.isolation?.sandboxed && exit.exitCode !== 125) {
      const status = parseSandboxStatus((await readOptional(paths.sandboxStatusFile)) ?? '');
      if (status.exitCode === undefined) {
        const why = (await bwrapComplaint(paths)) ?? 'see stderr.log';
        return {
          ...info,
          state: 'crashed',
          message: `bubblewrap could not set up the domain's sandbox, the service never ran: ${why}`,
        };
      }
    }
    const cgroupHint =
      exit.exitCode === 125 ? ' (125: the supervisor could not join the cgroup; see stderr.log)' : '';
    return { ...info, state: 'crashed', message: `it ${how}${cgroupHint}` };
  }
  if (run.stopRequestedAt) {
    return stoppedOnRequest({ ...info, finishedAt: run.forcedAt ?? run.stopRequestedAt }, run);
  }
  return {
    ...info,
    state: 'crashed',
    message:
      'it ended without an exit status: its supervisor was killed with it (OOM killer, someone killed the process group) or the host restarted',
  };
}
