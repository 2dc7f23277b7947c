// Running a command in a process-driver domain (exec health checks, `driver.exec`): inside the domain's own
// running sandbox — its mount, PID, IPC and UTS namespaces, as its uid, with no privileges, its env and
// working directory, and inside its cgroups — never on the host. Unsandboxed (--unsafe-no-sandbox) it runs
// in the domain's directory as xenosd's user, as the service does. The command, nsenter and all it forks
// form one process group that a timeout or an abort SIGKILLs whole.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { ExecResult, SignalOptions } from '../driver.ts';
import { DOMAIN_MOUNT, enterCommand, sandboxedCommand } from '../sandbox/bwrap-plan.ts';
import type { Sandbox } from '../sandbox/sandbox.ts';
import type { Cgroups } from './cgroup.ts';
import type { DomainPaths, DomainRecord } from './domain-record.ts';
import { waitForSandboxInit } from './domain-state.ts';
import { sandboxPlan } from './launch-plan.ts';

const MAX_OUTPUT = 1024 * 1024;

export interface ExecContext {
  cgroups?: Cgroups;
  /** Absent: domains run unsandboxed (--unsafe-no-sandbox). */
  sandbox?: Sandbox;
  /** PATH of a domain that never ran. */
  path: string;
}

/** `driver.exec`: runs `command` inside the domain of `rec` (see the header). */
export async function execInDomain(
  paths: DomainPaths,
  rec: DomainRecord,
  command: string[],
  ctx: ExecContext,
  options: SignalOptions & { timeoutMs?: number } = {},
): Promise<ExecResult> {
  const id = rec.spec.id;
  const run = rec.run;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const procs = ctx.cgroups && run ? await ctx.cgroups.procsFiles(id) : [];
  const sandbox = ctx.sandbox;
  if (run?.isolation?.sandboxed) {
    if (!sandbox) {
      const why = 'it runs sandboxed and this driver has no sandbox (--unsafe-no-sandbox)';
      return { exitCode: null, stdout: '', stderr: `domain ${id}: cannot run a command in it: ${why}` };
    }
    // Right after a start the sandbox may not be set up yet: wait for it while the supervisor lives.
    const init = await waitForSandboxInit(paths, run, { timeoutMs, signal: options.signal, setUp: true });
    if (init === undefined) {
      return {
        exitCode: null,
        stdout: '',
        stderr: `domain ${id} is not running: nothing to run a command in`,
      };
    }
    const workDir = run.workDir ?? DOMAIN_MOUNT;
    const inside =
      rec.identity && sandbox.mode === 'uid'
        ? enterCommand(init, rec.identity, workDir, command)
        : sandboxedCommand(
            sandbox.bwrap,
            sandboxPlan(rec.spec, paths, workDir, sandbox, undefined, existsSync(paths.tokenFile)),
            await sandbox.hostLayout(),
            command,
          );
    return runCommand(inCgroups(procs, inside), {
      env: run.env,
      cwd: '/',
      timeoutMs,
      signal: options.signal,
    });
  }
  if (sandbox) {
    return {
      exitCode: null,
      stdout: '',
      stderr: `domain ${id} is not running in a sandbox: nothing to run a command in`,
    };
  }
  const env = run?.env ?? { PATH: ctx.path, HOME: paths.rootfs, XENOS_DOMAIN_ID: id };
  return runCommand(inCgroups(procs, command), {
    env,
    cwd: run?.cwd ?? paths.rootfs,
    timeoutMs,
    signal: options.signal,
  });
}

/** Joins the cgroup.procs files given before `--`, then execs the rest (so nothing escapes the limits). */
const JOIN_CGROUPS = `while [ "$1" != "--" ]; do echo $$ > "$1" || { echo "xenos: cannot join cgroup $1" >&2; exit 125; }; shift; done
shift
exec "$@"`;

export function inCgroups(procsFiles: string[], command: string[]): string[] {
  if (!procsFiles.length) return command;
  return ['/bin/sh', '-c', JOIN_CGROUPS, 'xenos-exec', ...procsFiles, '--', ...command];
}

/** Runs `argv` to its end (or the timeout / abort, which SIGKILL its whole process group). */
export function runCommand(
  argv: string[],
  options: { env: Record<string, string>; cwd: string; timeoutMs: number; signal?: AbortSignal },
): Promise<ExecResult> {
  options.signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const collect = (which: 'out' | 'err') => (d: Buffer) => {
      if (which === 'out' && stdout.length < MAX_OUTPUT) stdout += d.toString();
      if (which === 'err' && stderr.length < MAX_OUTPUT) stderr += d.toString();
    };
    child.stdout.on('data', collect('out'));
    child.stderr.on('data', collect('err'));
    const killGroup = () => {
      if (child.pid) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    const onAbort = () => killGroup();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    child.once('error', (err) => {
      done();
      resolve({ exitCode: null, stdout: '', stderr: `cannot run ${argv[0]}: ${err.message}` });
    });
    child.once('close', (code, sig) => {
      done();
      if (options.signal?.aborted) return reject(options.signal.reason);
      if (timedOut)
        stderr += `${stderr && !stderr.endsWith('\n') ? '\n' : ''}timed out after ${options.timeoutMs} ms`;
      resolve({ exitCode: code, signal: sig ?? undefined, stdout, stderr });
    });
  });
}
