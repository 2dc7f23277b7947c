// The process driver: a domain is a supervised process tree in its own directory, no hypervisor needed.
// It is the embedded default (every Linux host can run it) and the driver the test clusters use.
// Each domain runs in a bubblewrap sandbox as its own unprivileged uid, seeing its own files and nothing of
// the data dir, other domains or xenosd (../sandbox/, README.md); a host where no sandbox can be made starts
// no domain (SandboxUnavailable) unless xenosd was told --unsafe-no-sandbox. Domains outlive xenosd: each
// runs detached under a tiny sh supervisor (supervisor.ts) in its own session, with its own cgroups where
// the host allows (cgroup.ts); everything the driver knows is in the domain's directory (domain-record.ts),
// so a restarted xenosd adopts running domains from `list()` and never starts a second copy. Cold migration
// only: stop, move the directory, start (cold-migration.ts).

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { type Log, silentLogger } from '../../log/logger.ts';
import type {
  DomainInfo,
  DomainSpec,
  DomainStats,
  Driver,
  DriverCapabilities,
  ExecResult,
  HostConditionFact,
  IncomingMigration,
  LogChunk,
  LogOptions,
  MigrationReport,
  MigrationTransport,
  ProbeResult,
  SignalOptions,
  StopOptions,
} from '../driver.ts';
import { DOMAIN_ID_PATTERN } from '../driver.ts';
import {
  DomainNotFoundError,
  DriverError,
  InvalidDomainSpecError,
  MigrationError,
  PrepareError,
  StartError,
} from '../errors.ts';
import { HostLeases } from '../host-leases.ts';
import { streamLogFiles } from '../log-files.ts';
import { DOMAIN_MOUNT, enterCommand, sandboxedCommand } from '../sandbox/bwrap-plan.ts';
import { chownTree, Sandbox, type SandboxInit } from '../sandbox/sandbox.ts';
import { waitUntil } from '../wait-until.ts';
import { type CgroupMode, Cgroups } from './cgroup.ts';
import {
  DOMAIN_DIR_LABEL,
  readAnswer,
  receiveDomainDir,
  sendDomainDir,
  writeAnswer,
} from './cold-migration.ts';
import { DomainPaths, type DomainRecord, type RunRecord, readRecord, writeRecord } from './domain-record.ts';
import { childPid, describeDomain, domainAlive, waitForSandboxInit } from './domain-state.ts';
import { inCgroups, runCommand } from './exec-in-domain.ts';
import { hostConditionsOf } from './host-conditions.ts';
import {
  beginLaunch,
  endLaunch,
  reapAllInterruptedLaunches,
  reapInterruptedLaunch,
} from './interrupted-launch.ts';
import { planLaunch, sandboxPlan } from './launch-plan.ts';
import { PortBook } from './port-book.ts';
import {
  CLOCK_TICKS_PER_SECOND,
  isAlive,
  readStat,
  readStatSync,
  residentBytes,
  sessionProcesses,
} from './proc.ts';
import { descendants, killTree, signalPid, signalSandbox } from './process-tree.ts';
import { materializeRootfs } from './rootfs.ts';
import { DEFAULT_LOG_ROTATION, type LogRotation, spawnSupervised } from './supervisor.ts';

const runFile = promisify(execFile);

export interface ProcessDriverComponents {
  log?: Log;
  /** Machine-wide uid and port leases. Default: the machine's (see host-leases.ts). */
  leases?: HostLeases;
}

export interface ProcessDriverInit {
  /** The coordinator's data directory; domains live in `<dataDir>/domains/<id>/`. */
  dataDir: string;
  /** The address endpoints are advertised on. Default 127.0.0.1. */
  advertiseAddress?: string;
  /** The cgroup manager, or false to run domains without limits. Default: a manager on /sys/fs/cgroup. */
  cgroups?: Cgroups | false;
  /** The sandbox's options, or false to run domains unsandboxed (xenosd --unsafe-no-sandbox). */
  sandbox?: SandboxInit | false;
  /** Default grace between SIGTERM and SIGKILL. Default 10 s. */
  defaultGraceMs?: number;
  /** How long to wait for a SIGKILLed tree to be gone. Default 5 s. */
  killTimeoutMs?: number;
  /** PATH given to services. Default: the usual system directories. */
  path?: string;
  /** Size-based rotation of the domains' stdout/stderr logs. Default 10 MiB, 3 rotated files kept. */
  logRotation?: LogRotation;
}

const DEFAULT_GRACE_MS = 10_000;
const DEFAULT_KILL_TIMEOUT_MS = 5_000;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export class ProcessDriver implements Driver {
  readonly name = 'process' as const;
  readonly capabilities: DriverCapabilities = {
    liveMigration: false,
    console: false,
    stats: true,
    coldMigration: true,
  };

  private readonly log: Log;
  private readonly domainsDir: string;
  private readonly advertiseAddress: string;
  private readonly cgroups: Cgroups | undefined;
  private readonly leases: HostLeases;
  private readonly sandbox: Sandbox | undefined;
  private readonly defaultGraceMs: number;
  private readonly killTimeoutMs: number;
  private readonly path: string;
  private readonly rotation: LogRotation;
  /** One operation at a time per domain within this process (start vs stop vs destroy). */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly ports: PortBook;
  private conditions: HostConditionFact[] = [];
  /** What the conditions last said of the sandbox. */
  private sandboxUsable?: boolean;

  constructor(components: ProcessDriverComponents, init: ProcessDriverInit) {
    this.log = components.log ?? silentLogger.root;
    this.domainsDir = `${init.dataDir.replace(/\/+$/, '')}/domains`;
    this.advertiseAddress = init.advertiseAddress ?? '127.0.0.1';
    this.cgroups = init.cgroups === false ? undefined : (init.cgroups ?? new Cgroups());
    this.leases = components.leases ?? new HostLeases();
    this.sandbox = init.sandbox === false ? undefined : new Sandbox({ leases: this.leases }, init.sandbox);
    this.defaultGraceMs = init.defaultGraceMs ?? DEFAULT_GRACE_MS;
    this.killTimeoutMs = init.killTimeoutMs ?? DEFAULT_KILL_TIMEOUT_MS;
    this.path = init.path ?? DEFAULT_PATH;
    this.rotation = init.logRotation ?? DEFAULT_LOG_ROTATION;
    this.ports = new PortBook({ leases: this.leases }, { domainsDir: this.domainsDir });
  }

  async start(): Promise<void> {
    await mkdir(this.domainsDir, { recursive: true, mode: 0o700 });
    await reapAllInterruptedLaunches(this.domainsDir, await this.domainIds(), {
      timeoutMs: this.killTimeoutMs,
      log: this.log,
    });
    await this.refreshConditions();
  }

  async stop(): Promise<void> {
    // Nothing runs in the background; domains are meant to outlive the coordinator.
    this.leases.close();
  }

  async probe(): Promise<ProbeResult> {
    if (process.platform !== 'linux') {
      return {
        usable: false,
        reason: `the process driver reads /proc and needs Linux, not ${process.platform}`,
      };
    }
    try {
      await runFile('/bin/sh', ['-c', 'exit 0'], { timeout: 5000 });
    } catch (err) {
      return {
        usable: false,
        reason: `cannot run /bin/sh for the domain supervisor: ${(err as Error).message}`,
      };
    }
    // A host without a sandbox still runs the driver: its domains do not start, and say why.
    return { usable: true };
  }

  hostConditions(): HostConditionFact[] {
    return this.conditions;
  }

  /** Probes the sandbox (again, while it fails) and the cgroups, for hostConditions(). */
  private async refreshConditions(): Promise<void> {
    const status = this.sandbox ? await this.sandbox.probe() : undefined;
    this.sandboxUsable = status?.usable;
    const mode: CgroupMode = this.cgroups
      ? await this.cgroups.detect()
      : { kind: 'none', reason: 'cgroups are turned off in this driver' };
    this.conditions = hostConditionsOf(this.sandbox, status, mode);
  }

  private paths(id: string): DomainPaths {
    if (!DOMAIN_ID_PATTERN.test(id)) {
      throw new InvalidDomainSpecError(
        id,
        `must match ${DOMAIN_ID_PATTERN} (use domainIdFor(instance))`,
        'id',
      );
    }
    return new DomainPaths(this.domainsDir, id);
  }

  private withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.locks.get(id) ?? Promise.resolve()).catch(() => {}).then(fn);
    this.locks.set(id, next);
    next
      .finally(() => {
        if (this.locks.get(id) === next) this.locks.delete(id);
      })
      .catch(() => {});
    return next;
  }

  // ------------------------------------------------------------------------------------------------
  // prepare / start

  async prepare(spec: DomainSpec, options: SignalOptions = {}): Promise<DomainInfo> {
    return this.withLock(spec.id, async () => this.describe(await this.prepareLocked(spec, options.signal)));
  }

  private async prepareLocked(spec: DomainSpec, signal?: AbortSignal): Promise<DomainRecord> {
    const paths = this.paths(spec.id);
    if (!spec.process?.command?.length) {
      throw new InvalidDomainSpecError(
        spec.id,
        'the process driver needs a command to run',
        'spec.process.command',
      );
    }
    const digest = spec.image.digest ?? '';
    const existing = await readRecord(paths);
    const rootfsThere = await stat(paths.rootfs).then(
      () => true,
      () => false,
    );
    if (existing && rootfsThere && existing.preparedDigest === digest) {
      existing.spec = spec;
      await this.ensureIdentity(existing, paths, false);
      await writeRecord(paths, existing);
      return existing;
    }
    if (existing?.run && (await domainAlive(paths, existing.run))) {
      throw new PrepareError(
        spec.id,
        `it runs from image ${existing.preparedDigest || '(no digest)'} and the spec now asks for ${digest || '(no digest)'}; stop it before changing its image`,
      );
    }
    try {
      await mkdir(paths.dir, { recursive: true, mode: 0o700 });
      await materializeRootfs(spec.image, paths.rootfs, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new PrepareError(spec.id, `copying image ${spec.image.path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const rec: DomainRecord = {
      version: 1,
      spec,
      preparedDigest: digest,
      preparedAt: new Date().toISOString(),
      ports: existing?.ports ?? {},
      restartCount: existing?.restartCount ?? 0,
      run: existing?.run,
      identity: existing?.identity,
    };
    await this.ensureIdentity(rec, paths, true);
    await writeRecord(paths, rec);
    return rec;
  }

  /** Gives the domain its own uid (root mode) and its rootfs to that uid: when the rootfs is new, or the
   *  domain has no uid yet (made unsandboxed, or moved here from another host). */
  private async ensureIdentity(rec: DomainRecord, paths: DomainPaths, freshRootfs: boolean): Promise<void> {
    if (this.sandbox?.mode !== 'uid') return;
    const had = rec.identity;
    rec.identity = await this.sandbox.identityFor(paths.dir, rec.spec.id);
    if (!freshRootfs && had?.uid === rec.identity?.uid) return;
    try {
      await chownTree(paths.rootfs, rec.identity!);
    } catch (err) {
      throw new PrepareError(
        rec.spec.id,
        `giving its files to uid ${rec.identity!.uid}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  async startDomain(spec: DomainSpec, options: SignalOptions = {}): Promise<DomainInfo> {
    return this.withLock(spec.id, async () => {
      const rec = await this.prepareLocked(spec, options.signal);
      const paths = this.paths(spec.id);
      if (rec.run && (await domainAlive(paths, rec.run))) return this.describe(rec);
      options.signal?.throwIfAborted();
      return this.describe(await this.launch(rec, paths));
    });
  }

  private async launch(rec: DomainRecord, paths: DomainPaths): Promise<DomainRecord> {
    const spec = rec.spec;
    await reapInterruptedLaunch(paths, rec.run, { timeoutMs: this.killTimeoutMs });
    let sandboxed: Parameters<typeof planLaunch>[3]['sandbox'];
    if (this.sandbox) {
      const status = await this.sandbox.probe();
      if (status.usable !== this.sandboxUsable) await this.refreshConditions();
      await this.sandbox.ensureUsable(spec.id);
      sandboxed = { sandbox: this.sandbox, status, identity: rec.identity };
    }
    const allocated = await this.ports.allocate(spec, rec.ports, paths.dir);
    await mkdir(paths.logs, { recursive: true, mode: 0o700 });
    await mkdir(paths.run, { recursive: true, mode: 0o700 });
    await chmod(paths.dir, 0o700);
    const plan = await planLaunch(spec, paths, allocated, {
      path: this.path,
      advertiseAddress: this.advertiseAddress,
      sandbox: sandboxed,
    });
    await rm(paths.exitFile, { force: true });
    await rm(paths.childPidFile, { force: true });
    const cg = this.cgroups
      ? await this.cgroups.setup(spec.id, spec.resources)
      : { procsFiles: [], limits: { enforced: false, reason: 'cgroups are turned off in this driver' } };

    await beginLaunch(paths);
    const child = spawnSupervised({
      command: plan.argv,
      cwd: plan.spawnCwd,
      env: plan.env,
      runDir: paths.run,
      stderrPath: paths.stderr,
      rotation: this.rotation,
      cgroupProcsFiles: cg.procsFiles,
      sandboxStatus: plan.isolation.sandboxed,
    });
    child.on('error', (err) =>
      this.log.error({ err, domain: spec.id }, `domain ${spec.id}: supervisor: ${err.message}`),
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
      limits: cg.limits,
      isolation: plan.isolation,
    };
    if (rec.run) rec.restartCount += 1;
    rec.run = run;
    rec.ports = allocated;
    await writeRecord(paths, rec);
    await endLaunch(paths);
    return rec;
  }

  // ------------------------------------------------------------------------------------------------
  // observe

  private async domainIds(): Promise<string[]> {
    const names = await readdir(this.domainsDir).catch(() => [] as string[]);
    return names.filter((n) => DOMAIN_ID_PATTERN.test(n));
  }

  private describe(rec: DomainRecord): Promise<DomainInfo> {
    return describeDomain(this.paths(rec.spec.id), rec, this.advertiseAddress);
  }

  async inspect(id: string): Promise<DomainInfo | undefined> {
    const rec = await readRecord(this.paths(id));
    return rec ? this.describe(rec) : undefined;
  }

  async list(): Promise<DomainInfo[]> {
    const out: DomainInfo[] = [];
    for (const id of await this.domainIds()) {
      try {
        const rec = await readRecord(new DomainPaths(this.domainsDir, id));
        if (rec) out.push(await this.describe(rec));
      } catch (err) {
        this.log.warn(`domain ${id}: unreadable record, skipped: ${(err as Error).message}`);
      }
    }
    return out;
  }

  async stats(id: string): Promise<DomainStats | undefined> {
    const rec = await readRecord(this.paths(id));
    if (!rec?.run || !(await domainAlive(this.paths(id), rec.run))) return undefined;
    const own = await readStat(rec.run.pid);
    const procs = [...(own ? [own] : []), ...(await descendants(rec.run.pid))];
    let ticks = 0;
    let memory = 0;
    for (const p of procs) {
      ticks += p.cpuTicks;
      memory += await residentBytes(p.pid);
    }
    return { cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND, memoryBytes: memory };
  }

  async *logs(id: string, options: LogOptions = {}): AsyncGenerator<LogChunk> {
    const paths = this.paths(id);
    if (!(await readRecord(paths))) throw new DomainNotFoundError(id, this.domainsDir);
    yield* streamLogFiles(
      [
        { stream: 'stdout', path: paths.stdout, rotated: this.rotation.keep },
        { stream: 'stderr', path: paths.stderr, rotated: this.rotation.keep },
      ],
      options,
    );
  }

  async exec(
    id: string,
    command: string[],
    options: SignalOptions & { timeoutMs?: number } = {},
  ): Promise<ExecResult> {
    const paths = this.paths(id);
    const rec = await readRecord(paths);
    if (!rec) throw new DomainNotFoundError(id, this.domainsDir);
    const run = rec.run;
    const timeoutMs = options.timeoutMs ?? 10_000;
    const procs = this.cgroups && run ? await this.cgroups.procsFiles(id) : [];
    if (run?.isolation?.sandboxed) {
      // Right after a start the sandbox may not be up yet: wait for its pid 1 while the supervisor lives.
      const init = await waitForSandboxInit(paths, run, { timeoutMs, signal: options.signal });
      if (init === undefined) {
        return {
          exitCode: null,
          stdout: '',
          stderr: `domain ${id} is not running: nothing to run a command in`,
        };
      }
      const workDir = run.workDir ?? DOMAIN_MOUNT;
      const inside =
        rec.identity && this.sandbox?.mode === 'uid'
          ? enterCommand(init, rec.identity, workDir, command)
          : sandboxedCommand(
              this.sandbox!.bwrap,
              sandboxPlan(rec.spec, paths, workDir, this.sandbox!, undefined, existsSync(paths.tokenFile)),
              await this.sandbox!.hostLayout(),
              command,
            );
      return runCommand(inCgroups(procs, inside), {
        env: run.env,
        cwd: '/',
        timeoutMs,
        signal: options.signal,
      });
    }
    if (this.sandbox) {
      return {
        exitCode: null,
        stdout: '',
        stderr: `domain ${id} is not running in a sandbox: nothing to run a command in`,
      };
    }
    const env = run?.env ?? { PATH: this.path, HOME: paths.rootfs, XENOS_DOMAIN_ID: id };
    return runCommand(inCgroups(procs, command), {
      env,
      cwd: run?.cwd ?? paths.rootfs,
      timeoutMs,
      signal: options.signal,
    });
  }

  // ------------------------------------------------------------------------------------------------
  // stop / destroy

  async stopDomain(id: string, options: StopOptions = {}): Promise<DomainInfo | undefined> {
    return this.withLock(id, async () => {
      const paths = this.paths(id);
      const rec = await readRecord(paths);
      if (!rec) return undefined;
      await this.stopLocked(paths, rec, options.graceMs ?? this.defaultGraceMs, options.signal);
      return this.describe(rec);
    });
  }

  private async stopLocked(
    paths: DomainPaths,
    rec: DomainRecord,
    graceMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const run = rec.run;
    await reapInterruptedLaunch(paths, run, { timeoutMs: this.killTimeoutMs, signal });
    if (!run || !(await domainAlive(paths, run))) return;
    run.stopRequestedAt = new Date().toISOString();
    await writeRecord(paths, rec);
    const supervisorAlive = () => isAlive(run.pid, run.startTime);
    if (graceMs > 0 && (await supervisorAlive())) {
      await this.politeStop(paths, run, graceMs, signal);
      await waitUntil(async () => !(await domainAlive(paths, run)), { timeoutMs: graceMs, signal });
    }
    if (await supervisorAlive()) {
      run.forcedAt = new Date().toISOString();
      await writeRecord(paths, rec);
    }
    // Whatever is left of the tree (the service, or things it left behind) is killed outright.
    if (await supervisorAlive()) await killTree(run.pid);
    for (const p of await sessionProcesses(run.pid)) signalPid(p.pid, 'SIGKILL');
    await this.cgroups?.kill(rec.spec.id);
    const gone = await waitUntil(async () => !(await domainAlive(paths, run)), {
      timeoutMs: this.killTimeoutMs,
      signal,
    });
    if (!gone) {
      throw new DriverError(
        'StopFailed',
        `domain ${rec.spec.id}: still alive ${this.killTimeoutMs} ms after SIGKILL (pid ${run.pid})`,
        rec.spec.id,
      );
    }
  }

  /** SIGTERM to the service and all it forked: inside the sandbox, every process but its pid 1 (see
   *  process-tree.ts); unsandboxed, the supervisor's child and its descendants. */
  private async politeStop(
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

  async destroy(id: string, options: SignalOptions = {}): Promise<void> {
    await this.withLock(id, async () => {
      const paths = this.paths(id);
      const rec = await readRecord(paths).catch(() => undefined);
      if (rec) await this.stopLocked(paths, rec, 0, options.signal);
      if (this.cgroups) {
        const cgroups = this.cgroups;
        // A killed group lingers for a moment until the kernel has reaped its last process.
        await waitUntil(
          () =>
            cgroups.remove(id).then(
              () => true,
              () => false,
            ),
          { timeoutMs: this.killTimeoutMs, signal: options.signal },
        );
      }
      await rm(paths.dir, { recursive: true, force: true });
      await rm(`${paths.dir}.incoming`, { recursive: true, force: true });
      this.leases.release(paths.dir);
      await this.ports.forget(id);
    });
  }

  // ------------------------------------------------------------------------------------------------
  // migration (cold)

  async migrateOut(
    id: string,
    transport: MigrationTransport,
    options: SignalOptions & { mode?: 'auto' | 'live' | 'cold' } = {},
  ): Promise<MigrationReport> {
    if (options.mode === 'live') {
      throw new MigrationError(
        id,
        'the process driver cannot migrate a running process live; ask for mode Cold or Auto',
      );
    }
    const began = Date.now();
    await this.withLock(id, async () => {
      const paths = this.paths(id);
      const rec = await readRecord(paths);
      if (!rec) throw new DomainNotFoundError(id, this.domainsDir);
      await this.stopLocked(paths, rec, this.defaultGraceMs, options.signal);
    });
    const stream = await transport.open(DOMAIN_DIR_LABEL, { signal: options.signal });
    try {
      const bytes = await sendDomainDir(this.paths(id).dir, stream, options.signal);
      const answer = await readAnswer(stream);
      if (!answer.ok)
        throw new MigrationError(
          id,
          `the destination could not start it: ${answer.error ?? 'no reason given'}`,
        );
      return { mode: 'cold', downtimeMs: Date.now() - began, bytesTransferred: bytes };
    } catch (err) {
      stream.destroy();
      if (err instanceof MigrationError) throw err;
      throw new MigrationError(id, (err as Error).message, { cause: err });
    }
  }

  async migrateIn(
    spec: DomainSpec,
    incoming: IncomingMigration,
    options: SignalOptions = {},
  ): Promise<DomainInfo> {
    const paths = this.paths(spec.id);
    for await (const { label, stream } of incoming) {
      if (label !== DOMAIN_DIR_LABEL) {
        stream.destroy();
        throw new MigrationError(
          spec.id,
          `unexpected stream "${label}" (the process driver takes "${DOMAIN_DIR_LABEL}")`,
        );
      }
      try {
        const info = await this.withLock(spec.id, async () => {
          const here = await readRecord(paths);
          if (here?.run && (await domainAlive(paths, here.run))) {
            throw new MigrationError(spec.id, 'a domain with this id already runs on this host');
          }
          const staging = `${paths.dir}.incoming`;
          await rm(staging, { recursive: true, force: true });
          await mkdir(staging, { recursive: true, mode: 0o700 });
          await receiveDomainDir(stream, staging, options.signal);
          const moved = await readRecord(new DomainPaths(this.domainsDir, `${spec.id}.incoming`));
          if (!moved) throw new MigrationError(spec.id, 'the stream held no domain.json');
          await rm(paths.dir, { recursive: true, force: true });
          await rename(staging, paths.dir);
          // Keep the moved rootfs, logs, ports (as preferences) and restart count; this host's run starts now.
          // The uid came from the source host's range: this host leases its own and gives the files to it.
          const rec: DomainRecord = {
            ...moved,
            spec,
            preparedDigest: spec.image.digest ?? moved.preparedDigest,
            run: undefined,
            identity: undefined,
          };
          await this.ensureIdentity(rec, paths, true);
          await writeRecord(paths, rec);
          return this.describe(await this.launch(rec, paths));
        });
        await writeAnswer(stream, { ok: true, startedAt: info.startedAt });
        return info;
      } catch (err) {
        await writeAnswer(stream, { ok: false, error: (err as Error).message });
        throw err instanceof DriverError
          ? err
          : new MigrationError(spec.id, (err as Error).message, { cause: err });
      }
    }
    throw new MigrationError(spec.id, 'the source opened no stream');
  }
}
