// What one run of a process-driver domain gets: its command with `${...}` references expanded (host ports
// are known by then), its working directory (checked to stay inside the domain's files), its environment,
// its token file, and — sandboxed — the whole bwrap command line that shows it its own files and nothing
// else. Paths are given as the service sees them: /domain inside the sandbox, the host path without one.

import { chown, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { DomainSpec, IsolationReport } from '../driver.ts';
import { InvalidDomainSpecError } from '../errors.ts';
import { expandProcess, portEnvName } from '../params.ts';
import {
  DOMAIN_MOUNT,
  type Identity,
  type SandboxPlan,
  sandboxedCommandWithArgsFd,
  TOKEN_PATH,
} from '../sandbox/bwrap-plan.ts';
import type { Sandbox, SandboxStatus } from '../sandbox/sandbox.ts';
import type { DomainPaths } from './domain-record.ts';

/** The fds the supervisor opens for bwrap: its JSON status (run/sandbox.json) and its options. */
const SANDBOX_STATUS_FD = 3;
const SANDBOX_ARGS_FD = 4;

/** The private /tmp of a domain without a memory limit (with one, the limit: tmpfs pages count in it). */
const DEFAULT_TMPFS_BYTES = 256 * 1024 * 1024;

export interface LaunchContext {
  path: string;
  advertiseAddress: string;
  /** Absent: unsandboxed (--unsafe-no-sandbox). */
  sandbox?: { sandbox: Sandbox; status: SandboxStatus; identity?: Identity };
}

export interface LaunchPlan {
  /** The full command line the supervisor starts (bwrap … -- setpriv … -- command, or the command). */
  argv: string[];
  /** The service's own command, as the template gave it, expanded. */
  command: string[];
  env: Record<string, string>;
  /** Where the supervisor starts: `/` sandboxed (bwrap changes directory itself), else the host cwd. */
  spawnCwd: string;
  hostCwd: string;
  workDir: string;
  isolation: IsolationReport;
}

export async function planLaunch(
  spec: DomainSpec,
  paths: DomainPaths,
  ports: Record<string, number>,
  ctx: LaunchContext,
): Promise<LaunchPlan> {
  const root = ctx.sandbox ? DOMAIN_MOUNT : paths.rootfs;
  const expanded = expandProcess(spec.process!, {
    params: spec.parameters,
    ports,
    instance: spec.instance,
    domain: { id: spec.id, dir: root },
  });
  const hostCwd = resolve(paths.rootfs, expanded.workingDir ?? '.');
  const rel = relative(paths.rootfs, hostCwd);
  if (rel.startsWith('..') || isAbsolute(rel)) {
    throw new InvalidDomainSpecError(
      spec.id,
      `${expanded.workingDir} leaves the domain's files`,
      'spec.process.workingDir',
    );
  }
  const isDir = await stat(hostCwd).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) {
    throw new InvalidDomainSpecError(
      spec.id,
      `${expanded.workingDir} is not a directory of the image`,
      'spec.process.workingDir',
    );
  }
  const workDir = ctx.sandbox ? join(DOMAIN_MOUNT, rel) : hostCwd;
  const env: Record<string, string> = {
    PATH: ctx.path,
    HOME: root,
    XENOS_DOMAIN_ID: spec.id,
    XENOS_DOMAIN_DIR: root,
    XENOS_INSTANCE_NAME: spec.instance.name,
    XENOS_INSTANCE_NAMESPACE: spec.instance.namespace,
    XENOS_INSTANCE_UID: spec.instance.uid,
    XENOS_HOST_ADDRESS: ctx.advertiseAddress,
  };
  const declared = spec.ports ?? [];
  if (declared.length) env.PORT = String(ports[declared[0].name]);
  for (const p of declared) env[portEnvName(p.name)] = String(ports[p.name]);
  Object.assign(env, expanded.env);

  await rm(paths.tokenFile, { force: true });
  if (spec.token !== undefined) {
    await writeToken(paths, spec.token, ctx.sandbox?.identity);
    env.XENOS_TOKEN_FILE = ctx.sandbox ? TOKEN_PATH : paths.tokenFile;
  }
  const command = [...expanded.command, ...(expanded.args ?? [])];
  if (!ctx.sandbox) {
    return {
      argv: command,
      command,
      env,
      spawnCwd: hostCwd,
      hostCwd,
      workDir,
      isolation: { sandboxed: false, reason: 'xenosd runs with --unsafe-no-sandbox' },
    };
  }
  const { sandbox, identity } = ctx.sandbox;
  const plan = sandboxPlan(spec, paths, workDir, sandbox, identity, spec.token !== undefined);
  const { argv, isolation } = await sandboxedLaunch(paths, ctx.sandbox, plan, command);
  return { argv, command, env, spawnCwd: '/', hostCwd, workDir, isolation };
}

/** The supervisor's command line for `command` in the sandbox `plan` describes, with bwrap's options in
 *  run/bwrap.args (the supervisor opens it on fd 4: off bwrap's command line, which the domain can read),
 *  and what the domain's status says of its isolation. */
export async function sandboxedLaunch(
  paths: DomainPaths,
  ctx: NonNullable<LaunchContext['sandbox']>,
  plan: SandboxPlan,
  command: string[],
): Promise<{ argv: string[]; isolation: IsolationReport }> {
  const { sandbox, status, identity } = ctx;
  const { argv, options } = sandboxedCommandWithArgsFd(
    sandbox.bwrap,
    { ...plan, statusFd: SANDBOX_STATUS_FD },
    await sandbox.hostLayout(),
    command,
    SANDBOX_ARGS_FD,
  );
  await writeFile(paths.bwrapArgsFile, options.map((o) => `${o}\0`).join(''), { mode: 0o600 });
  const who = identity ? `own uid ${identity.uid}` : `user namespace, uid ${process.getuid?.()}`;
  return {
    argv,
    isolation: {
      sandboxed: true,
      mechanism: `${status.version ?? 'bubblewrap'}, ${who}`,
      uid: identity?.uid ?? process.getuid?.(),
    },
  };
}

/** What the domain's sandbox shows it (see ../sandbox/bwrap-plan.ts): its rootfs, token, the operator's
 *  read-only paths, a /tmp as big as its memory limit. */
export function sandboxPlan(
  spec: DomainSpec,
  paths: DomainPaths,
  workDir: string,
  sandbox: Sandbox,
  identity: Identity | undefined,
  withToken: boolean,
): SandboxPlan {
  return {
    rootfs: paths.rootfs,
    workDir,
    identity,
    tokenFile: withToken ? paths.tokenFile : undefined,
    readOnlyPaths: sandbox.readOnlyPaths,
    hostname: spec.id,
    tmpfsBytes: spec.resources?.memoryBytes ?? DEFAULT_TMPFS_BYTES,
  };
}

/** The token as a file only the domain's uid (and root) can read, in the root-only run/ directory. */
export async function writeToken(
  paths: DomainPaths,
  token: string,
  identity: Identity | undefined,
): Promise<void> {
  await mkdir(paths.run, { recursive: true, mode: 0o700 });
  await writeFile(paths.tokenFile, token, { mode: 0o400, flag: 'wx' });
  if (identity) await chown(paths.tokenFile, identity.uid, identity.gid);
}
