// The process driver: a domain is a supervised process tree in its own directory, no hypervisor needed.
// It is the embedded default (every Linux host can run it) and the driver the test clusters use.
// Domains outlive xenosd: each runs detached under a tiny sh supervisor (supervisor.ts) in its own session,
// with its own cgroups where the host allows (cgroup.ts); everything the driver knows is in the domain's
// directory (domain-record.ts), so a restarted xenosd adopts running domains from `list()` and never starts
// a second copy. Cold migration only: stop, move the directory, start (cold-migration.ts).

import { execFile } from 'node:child_process';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import type {
  DomainEndpoint,
  DomainInfo,
  DomainSpec,
  DomainStats,
  Driver,
  DriverCapabilities,
  ExecResult,
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
import { streamLogFiles } from '../log-files.ts';
import { expandProcess, portEnvName } from '../params.ts';
import { allocatePorts } from '../ports.ts';
import { waitUntil } from '../wait-until.ts';
import { Cgroups } from './cgroup.ts';
import {
  DOMAIN_DIR_LABEL,
  readAnswer,
  receiveDomainDir,
  sendDomainDir,
  writeAnswer,
} from './cold-migration.ts';
import {
  DomainPaths,
  type DomainRecord,
  type RunRecord,
  readOptional,
  readRecord,
  writeRecord,
} from './domain-record.ts';
import {
  beginLaunch,
  endLaunch,
  reapAllInterruptedLaunches,
  reapInterruptedLaunch,
} from './interrupted-launch.ts';
import {
  CLOCK_TICKS_PER_SECOND,
  isAlive,
  readStat,
  readStatSync,
  residentBytes,
  sessionProcesses,
} from './proc.ts';
import { materializeRootfs } from './rootfs.ts';
import { parseExitStatus, spawnSupervised } from './supervisor.ts';

const runFile = promisify(execFile);

/** What the driver writes its few warnings to; any Logger of the project fits. */
export interface DriverLog {
  warn(msg: string, ...args: unknown[]): void;
  error(msg: string, ...args: unknown[]): void;
}

export interface ProcessDriverComponents {
  log?: DriverLog;
}

export interface ProcessDriverInit {
  /** The coordinator's data directory; domains live in `<dataDir>/domains/<id>/`. */
  dataDir: string;
  /** The address endpoints are advertised on. Default 127.0.0.1. */
  advertiseAddress?: string;
  /** The cgroup manager, or false to run domains without limits. Default: a manager on /sys/fs/cgroup. */
  cgroups?: Cgroups | false;
  /** Default grace between SIGTERM and SIGKILL. Default 10 s. */
  defaultGraceMs?: number;
  /** How long to wait for a SIGKILLed tree to be gone. Default 5 s. */
  killTimeoutMs?: number;
  /** PATH given to services. Default: the usual system directories. */
  path?: string;
}

const DEFAULT_GRACE_MS = 10_000;
const DEFAULT_KILL_TIMEOUT_MS = 5_000;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const silentLog: DriverLog = { warn: () => {}, error: () => {} };

export class ProcessDriver implements Driver {
  readonly name = 'process' as const;
  readonly capabilities: DriverCapabilities = {
    liveMigration: false,
    console: false,
    stats: true,
    coldMigration: true,
  };

  private readonly log: DriverLog;
  private readonly domainsDir: string;
  private readonly advertiseAddress: string;
  private readonly cgroups: Cgroups | undefined;
  private readonly defaultGraceMs: number;
  private readonly killTimeoutMs: number;
  private readonly path: string;
  /** One operation at a time per domain within this process (start vs stop vs destroy). */
  private readonly locks = new Map<string, Promise<unknown>>();
  /** See portIndex(). */
  private portsByDomain?: Promise<Map<string, number[]>>;

  constructor(components: ProcessDriverComponents, init: ProcessDriverInit) {
    this.log = components.log ?? silentLog;
    this.domainsDir = join(init.dataDir, 'domains');
    this.advertiseAddress = init.advertiseAddress ?? '127.0.0.1';
    this.cgroups = init.cgroups === false ? undefined : (init.cgroups ?? new Cgroups());
    this.defaultGraceMs = init.defaultGraceMs ?? DEFAULT_GRACE_MS;
    this.killTimeoutMs = init.killTimeoutMs ?? DEFAULT_KILL_TIMEOUT_MS;
    this.path = init.path ?? DEFAULT_PATH;
  }

  async start(): Promise<void> {
    await mkdir(this.domainsDir, { recursive: true });
    await reapAllInterruptedLaunches(this.domainsDir, await this.domainIds(), {
      timeoutMs: this.killTimeoutMs,
      warn: (msg) => this.log.warn(msg),
    });
  }

  async stop(): Promise<void> {
    // Nothing runs in the background; domains are meant to outlive the coordinator.
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
    return { usable: true };
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
      await writeRecord(paths, existing);
      return existing;
    }
    if (existing?.run && (await this.domainAlive(paths, existing.run))) {
      throw new PrepareError(
        spec.id,
        `it runs from image ${existing.preparedDigest || '(no digest)'} and the spec now asks for ${digest || '(no digest)'}; stop it before changing its image`,
      );
    }
    try {
      await mkdir(paths.dir, { recursive: true });
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
    };
    await writeRecord(paths, rec);
    return rec;
  }

  async startDomain(spec: DomainSpec, options: SignalOptions = {}): Promise<DomainInfo> {
    return this.withLock(spec.id, async () => {
      const rec = await this.prepareLocked(spec, options.signal);
      const paths = this.paths(spec.id);
      if (rec.run && (await this.domainAlive(paths, rec.run))) return this.describe(rec);
      options.signal?.throwIfAborted();
      return this.describe(await this.launch(rec, paths));
    });
  }

  private async launch(rec: DomainRecord, paths: DomainPaths): Promise<DomainRecord> {
    const spec = rec.spec;
    await reapInterruptedLaunch(paths, rec.run, { timeoutMs: this.killTimeoutMs });
    const ports = spec.ports ?? [];
    const allocated = await allocatePorts(spec.id, ports, rec.ports, await this.portsInUse(spec.id));
    (await this.portIndex()).set(spec.id, Object.values(allocated));
    const expanded = expandProcess(spec.process!, {
      params: spec.parameters,
      ports: allocated,
      instance: spec.instance,
      domain: { id: spec.id, dir: paths.rootfs },
    });
    const cwd = resolve(paths.rootfs, expanded.workingDir ?? '.');
    const rel = relative(paths.rootfs, cwd);
    if (rel.startsWith('..') || isAbsolute(rel)) {
      throw new InvalidDomainSpecError(
        spec.id,
        `${expanded.workingDir} leaves the domain's files`,
        'spec.process.workingDir',
      );
    }
    if (
      !(await stat(cwd).then(
        (s) => s.isDirectory(),
        () => false,
      ))
    ) {
      throw new InvalidDomainSpecError(
        spec.id,
        `${expanded.workingDir} is not a directory of the image`,
        'spec.process.workingDir',
      );
    }
    const env: Record<string, string> = {
      PATH: this.path,
      HOME: paths.rootfs,
      XENOS_DOMAIN_ID: spec.id,
      XENOS_DOMAIN_DIR: paths.rootfs,
      XENOS_INSTANCE_NAME: spec.instance.name,
      XENOS_INSTANCE_NAMESPACE: spec.instance.namespace,
      XENOS_INSTANCE_UID: spec.instance.uid,
      XENOS_HOST_ADDRESS: this.advertiseAddress,
    };
    if (ports.length) env.PORT = String(allocated[ports[0].name]);
    for (const p of ports) env[portEnvName(p.name)] = String(allocated[p.name]);
    Object.assign(env, expanded.env);
    const command = [...expanded.command, ...(expanded.args ?? [])];

    await mkdir(paths.logs, { recursive: true });
    await mkdir(paths.run, { recursive: true });
    await rm(paths.exitFile, { force: true });
    await rm(paths.childPidFile, { force: true });
    const cg = this.cgroups
      ? await this.cgroups.setup(spec.id, spec.resources)
      : { procsFiles: [], limits: { enforced: false, reason: 'cgroups are turned off in this driver' } };

    await beginLaunch(paths);
    const child = spawnSupervised({
      command,
      cwd,
      env,
      stdoutPath: paths.stdout,
      stderrPath: paths.stderr,
      exitFile: paths.exitFile,
      childPidFile: paths.childPidFile,
      cgroupProcsFiles: cg.procsFiles,
    });
    child.on('error', (err) => this.log.error(`domain ${spec.id}: supervisor: ${err.message}`));
    // Read the start time now, synchronously: until the event loop turns, even an instantly exited
    // supervisor is an unreaped zombie of ours, so its /proc entry is still there.
    const stat0 = child.pid ? readStatSync(child.pid) : undefined;
    if (!child.pid || !stat0) {
      throw new StartError(spec.id, `could not start /bin/sh in ${cwd}; see the driver log`);
    }
    const run: RunRecord = {
      pid: child.pid,
      startTime: stat0.startTime,
      startedAt: new Date().toISOString(),
      command,
      env,
      cwd,
      limits: cg.limits,
    };
    if (rec.run) rec.restartCount += 1;
    rec.run = run;
    rec.ports = allocated;
    await writeRecord(paths, rec);
    await endLaunch(paths);
    return rec;
  }

  /** Host ports held by the other domains of this driver. */
  private async portsInUse(exceptId: string): Promise<Set<number>> {
    const used = new Set<number>();
    for (const [id, ports] of await this.portIndex()) {
      if (id === exceptId) continue;
      for (const port of ports) used.add(port);
    }
    return used;
  }

  /** Host ports each domain holds: read from the records once, then kept by launch and destroy (this
   *  driver is the records' one writer), so a start no longer reads every domain's record. */
  private portIndex(): Promise<Map<string, number[]>> {
    this.portsByDomain ??= (async () => {
      const index = new Map<string, number[]>();
      for (const id of await this.domainIds()) {
        const rec = await readRecord(new DomainPaths(this.domainsDir, id)).catch(() => undefined);
        if (rec?.ports) index.set(id, Object.values(rec.ports));
      }
      return index;
    })();
    return this.portsByDomain;
  }

  // ------------------------------------------------------------------------------------------------
  // observe

  private async domainIds(): Promise<string[]> {
    const names = await readdir(this.domainsDir).catch(() => [] as string[]);
    return names.filter((n) => DOMAIN_ID_PATTERN.test(n));
  }

  /** The service's pid if it lives in the supervisor's session (it may outlive a killed supervisor). */
  private async childPid(paths: DomainPaths, run: RunRecord): Promise<number | undefined> {
    const text = await readOptional(paths.childPidFile);
    const pid = text ? Number.parseInt(text, 10) : Number.NaN;
    if (!Number.isInteger(pid)) return undefined;
    const st = await readStat(pid);
    return st && st.session === run.pid && st.state !== 'Z' ? pid : undefined;
  }

  private async domainAlive(paths: DomainPaths, run: RunRecord): Promise<boolean> {
    return (await isAlive(run.pid, run.startTime)) || (await this.childPid(paths, run)) !== undefined;
  }

  private endpoints(rec: DomainRecord): DomainEndpoint[] {
    const out: DomainEndpoint[] = [];
    for (const p of rec.spec.ports ?? []) {
      const port = rec.ports[p.name];
      if (port === undefined) continue;
      const ep: DomainEndpoint = {
        name: p.name,
        address: this.advertiseAddress,
        port,
        guestPort: port,
        protocol: p.protocol,
      };
      const app = p.appProtocol ?? p.name;
      if (app === 'http' || app === 'https') ep.url = `${app}://${this.advertiseAddress}:${port}/`;
      out.push(ep);
    }
    return out;
  }

  private async describe(rec: DomainRecord): Promise<DomainInfo> {
    const paths = this.paths(rec.spec.id);
    const info: DomainInfo = {
      id: rec.spec.id,
      driver: 'process',
      instance: rec.spec.instance,
      state: 'prepared',
      restartCount: rec.restartCount,
      endpoints: this.endpoints(rec),
    };
    if (rec.preparedDigest) info.imageDigest = rec.preparedDigest;
    const run = rec.run;
    if (!run) return info;
    info.pid = run.pid;
    info.startedAt = run.startedAt;
    info.limits = run.limits;
    if (await isAlive(run.pid, run.startTime)) return { ...info, state: 'running' };
    if ((await this.childPid(paths, run)) !== undefined) {
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
      if (run.stopRequestedAt) return { ...info, state: 'stopped', message: `stopped on request; it ${how}` };
      if (exit.exitCode === 0) return { ...info, state: 'stopped', message: 'exited with code 0' };
      const cgroupHint =
        exit.exitCode === 125 ? ' (125: the supervisor could not join the cgroup; see stderr.log)' : '';
      return { ...info, state: 'crashed', message: `it ${how}${cgroupHint}` };
    }
    if (run.stopRequestedAt) {
      return {
        ...info,
        state: 'stopped',
        finishedAt: run.forcedAt ?? run.stopRequestedAt,
        signal: run.forcedAt ? 'SIGKILL' : undefined,
        message: run.forcedAt
          ? 'stopped on request; forced with SIGKILL after the grace period'
          : 'stopped on request',
      };
    }
    return {
      ...info,
      state: 'crashed',
      message:
        'it ended without an exit status: its supervisor was killed with it (OOM killer, someone killed the process group) or the host restarted',
    };
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
    if (!rec?.run || !(await this.domainAlive(this.paths(id), rec.run))) return undefined;
    const procs = await sessionProcesses(rec.run.pid);
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
        { stream: 'stdout', path: paths.stdout },
        { stream: 'stderr', path: paths.stderr },
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
    const env = rec.run?.env ?? { PATH: this.path, HOME: paths.rootfs, XENOS_DOMAIN_ID: id };
    const cwd = rec.run?.cwd ?? paths.rootfs;
    try {
      const { stdout, stderr } = await runFile(command[0], command.slice(1), {
        cwd,
        env,
        signal: options.signal,
        timeout: options.timeoutMs ?? 10_000,
        maxBuffer: 1024 * 1024,
      });
      return { exitCode: 0, stdout, stderr };
    } catch (err) {
      const e = err as NodeJS.ErrnoException & {
        code?: unknown;
        signal?: string;
        stdout?: string;
        stderr?: string;
      };
      if (options.signal?.aborted) throw err;
      if (typeof e.code === 'number' || e.signal) {
        return {
          exitCode: typeof e.code === 'number' ? e.code : null,
          signal: e.signal ?? undefined,
          stdout: e.stdout ?? '',
          stderr: e.stderr ?? '',
        };
      }
      return { exitCode: null, stdout: '', stderr: `cannot run ${command[0]}: ${e.message}` };
    }
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
    if (!run || !(await this.domainAlive(paths, run))) return;
    run.stopRequestedAt = new Date().toISOString();
    await writeRecord(paths, rec);
    const supervisorAlive = () => isAlive(run.pid, run.startTime);
    if (graceMs > 0 && (await supervisorAlive())) {
      signalGroup(run.pid, 'SIGTERM');
      const child = await this.childPid(paths, run);
      if (child !== undefined) signalPid(child, 'SIGTERM'); // in case it moved to its own process group
      await waitUntil(async () => !(await this.domainAlive(paths, run)), { timeoutMs: graceMs, signal });
    }
    if (await supervisorAlive()) {
      run.forcedAt = new Date().toISOString();
      await writeRecord(paths, rec);
    }
    // Whatever is left of the tree (the service, or things it left behind) is killed outright.
    await this.killTree(rec.spec.id, run);
    const gone = await waitUntil(async () => !(await this.domainAlive(paths, run)), {
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

  private async killTree(id: string, run: RunRecord): Promise<void> {
    for (const p of await sessionProcesses(run.pid)) signalPid(p.pid, 'SIGKILL');
    await this.cgroups?.kill(id);
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
      (await this.portIndex()).delete(id);
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
          if (here?.run && (await this.domainAlive(paths, here.run))) {
            throw new MigrationError(spec.id, 'a domain with this id already runs on this host');
          }
          const staging = `${paths.dir}.incoming`;
          await rm(staging, { recursive: true, force: true });
          await mkdir(staging, { recursive: true });
          await receiveDomainDir(stream, staging, options.signal);
          const moved = await readRecord(new DomainPaths(this.domainsDir, `${spec.id}.incoming`));
          if (!moved) throw new MigrationError(spec.id, 'the stream held no domain.json');
          await rm(paths.dir, { recursive: true, force: true });
          await rename(staging, paths.dir);
          // Keep the moved rootfs, logs, ports (as preferences) and restart count; this host's run starts now.
          const rec: DomainRecord = {
            ...moved,
            spec,
            preparedDigest: spec.image.digest ?? moved.preparedDigest,
            run: undefined,
          };
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

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Signals the process group led by `pgid` (the supervisor's, made by setsid). */
function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  signalPid(-pgid, signal);
}
