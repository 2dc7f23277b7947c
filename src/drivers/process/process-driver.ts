// The process driver: a domain is a supervised process tree in its own directory, no hypervisor needed.
// It is the embedded default (every Linux host can run it) and the driver the test clusters use.
// Each domain runs in a bubblewrap sandbox as its own unprivileged uid, seeing its own files and nothing of
// the data dir, other domains or xenosd (../sandbox/, README.md); a host where no sandbox can be made starts
// no domain (SandboxUnavailable) unless xenosd was told --unsafe-no-sandbox. Domains outlive xenosd: each
// runs detached under a tiny sh supervisor (supervisor.ts) in its own session, with its own cgroups where
// the host allows (cgroup.ts); everything the driver knows is in the domain's directory (domain-record.ts),
// so a restarted xenosd adopts running domains from `list()` and never starts a second copy. This file is
// the Driver and the per-domain lock; each job under it has its file: preparing the files
// (prepare-domain.ts), starting a run (launch-domain.ts), stopping (stop-domain.ts), exec
// (exec-in-domain.ts), cold migration (cold-migration.ts), failover copies of its layer (layer-copy.ts).

import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { promisify } from 'node:util';
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
  MigrateOutOptions,
  MigrationReport,
  MigrationTransport,
  ProbeResult,
  SignalOptions,
  StopOptions,
} from '../driver.ts';
import { DomainNotFoundError } from '../errors.ts';
import { prepareFromCopyOrImage } from '../from-copy.ts';
import { streamLogFiles } from '../log-files.ts';
import { type MigrationHost, migrateIn, migrateOut } from './cold-migration.ts';
import type { DiskModeChoice } from './disk-modes.ts';
import { DomainHost, type DomainHostComponents, type DomainHostOptions } from './domain-host.ts';
import {
  checkedDomainId,
  DomainPaths,
  type DomainRecord,
  readAllRecords,
  readRecord,
  writeRecord,
} from './domain-record.ts';
import { describeDomain, domainAlive } from './domain-state.ts';
import { execInDomain } from './exec-in-domain.ts';
import { diskCondition } from './host-conditions.ts';
import { launchDomain } from './launch-domain.ts';
import { copyLayer, installCopy } from './layer-copy.ts';
import { type DiskContext, diskContext, ensureIdentity, prepareDomainFiles } from './prepare-domain.ts';
import { CLOCK_TICKS_PER_SECOND, readStat, residentBytes } from './proc.ts';
import { descendants } from './process-tree.ts';
import { removeRootfs } from './rootfs.ts';
import { stopDomainTree } from './stop-domain.ts';

const runFile = promisify(execFile);

export type ProcessDriverComponents = DomainHostComponents;

export interface ProcessDriverInit extends DomainHostOptions {
  /** Default grace between SIGTERM and SIGKILL. Default 10 s. */
  defaultGraceMs?: number;
  /** PATH given to services. Default: the usual system directories. */
  path?: string;
  /** How domains' files are made from their image: `auto` (default) takes the best copy-on-write way the
   *  host allows (overlay, else reflink, else a plain copy); the others force a fallback. */
  diskMode?: DiskModeChoice;
}

const DEFAULT_GRACE_MS = 10_000;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export class ProcessDriver implements Driver {
  readonly name = 'process' as const;
  readonly capabilities: DriverCapabilities = {
    liveMigration: false,
    console: false,
    stats: true,
    coldMigration: true,
  };

  private readonly host: DomainHost;
  private readonly path: string;
  private conditions: HostConditionFact[] = [];
  /** What the conditions last said of the sandbox. */
  private sandboxUsable?: boolean;
  /** How domains' files are made (copy-on-write where the host allows, probed once). */
  private readonly disks: DiskContext;

  constructor(components: ProcessDriverComponents, init: ProcessDriverInit) {
    this.host = new DomainHost(components, {
      ...init,
      folder: 'domains',
      defaultGraceMs: init.defaultGraceMs ?? DEFAULT_GRACE_MS,
    });
    this.path = init.path ?? DEFAULT_PATH;
    this.disks = diskContext(this.host.dir, init.diskMode ?? 'auto');
  }

  async start(): Promise<void> {
    await this.host.start();
    await this.refreshConditions();
  }

  async stop(): Promise<void> {
    // Nothing runs in the background; domains are meant to outlive the coordinator.
    await this.host.stop();
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
    const { sandbox, facts } = await this.host.conditions();
    this.sandboxUsable = sandbox?.usable;
    this.conditions = [...facts, diskCondition(await this.disks.modes(), this.disks.choice)];
  }

  private paths(id: string): DomainPaths {
    return new DomainPaths(this.host.dir, checkedDomainId(id));
  }

  private withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.host.withLock(id, fn);
  }

  // ------------------------------------------------------------------------------------------------
  // prepare / start

  async prepare(spec: DomainSpec, options: SignalOptions = {}): Promise<DomainInfo> {
    return this.withLock(spec.id, async () => this.describe(await this.prepareLocked(spec, options.signal)));
  }

  private prepareLocked(spec: DomainSpec, signal?: AbortSignal): Promise<DomainRecord> {
    const paths = this.paths(spec.id);
    return prepareFromCopyOrImage(
      paths,
      spec,
      {
        // A failover's first start here: its files come from the copy of its layer, not from the image.
        fromCopy: async (copy) => {
          const rec = await installCopy(this.migrationHost(), spec, copy, signal);
          await this.ensureIdentity(rec, paths, true);
          await writeRecord(paths, rec);
          return rec;
        },
        fromImage: () => prepareDomainFiles(paths, spec, this.host.sandbox, this.disks, signal),
        log: this.host.log,
      },
      signal,
    );
  }

  private ensureIdentity(rec: DomainRecord, paths: DomainPaths, freshRootfs: boolean): Promise<void> {
    return ensureIdentity(rec, paths, freshRootfs, this.host.sandbox);
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

  private launch(rec: DomainRecord, paths: DomainPaths): Promise<DomainRecord> {
    return launchDomain(rec, paths, {
      sandbox: this.host.sandbox,
      sandboxChanged: async (usable) => {
        if (usable !== this.sandboxUsable) await this.refreshConditions();
      },
      ports: this.host.ports,
      cgroups: this.host.cgroups,
      path: this.path,
      advertiseAddress: this.host.advertiseAddress,
      rotation: this.host.rotation,
      killTimeoutMs: this.host.killTimeoutMs,
      log: this.host.log,
    });
  }

  // ------------------------------------------------------------------------------------------------
  // observe

  private describe(rec: DomainRecord): Promise<DomainInfo> {
    return describeDomain(this.paths(rec.spec.id), rec, this.host.advertiseAddress);
  }

  async inspect(id: string): Promise<DomainInfo | undefined> {
    const rec = await readRecord(this.paths(id));
    return rec ? this.describe(rec) : undefined;
  }

  async list(): Promise<DomainInfo[]> {
    const records = await readAllRecords(this.host.dir, (id, err) =>
      this.host.log.warn(`domain ${id}: unreadable record, skipped: ${err.message}`),
    );
    return Promise.all(records.map((rec) => this.describe(rec)));
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
    if (!(await readRecord(paths))) throw new DomainNotFoundError(id, this.host.dir);
    yield* streamLogFiles(
      [
        { stream: 'stdout', path: paths.stdout, rotated: this.host.rotation.keep },
        { stream: 'stderr', path: paths.stderr, rotated: this.host.rotation.keep },
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
    if (!rec) throw new DomainNotFoundError(id, this.host.dir);
    return execInDomain(
      paths,
      rec,
      command,
      { cgroups: this.host.cgroups, sandbox: this.host.sandbox, path: this.path },
      options,
    );
  }

  // ------------------------------------------------------------------------------------------------
  // stop / destroy

  async stopDomain(id: string, options: StopOptions = {}): Promise<DomainInfo | undefined> {
    return this.withLock(id, async () => {
      const paths = this.paths(id);
      const rec = await readRecord(paths);
      if (!rec) return undefined;
      await this.stopLocked(paths, rec, options.graceMs ?? this.host.defaultGraceMs, options.signal);
      return this.describe(rec);
    });
  }

  private stopLocked(
    paths: DomainPaths,
    rec: DomainRecord,
    graceMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    return stopDomainTree(
      paths,
      rec,
      graceMs,
      { cgroups: this.host.cgroups, killTimeoutMs: this.host.killTimeoutMs },
      signal,
    );
  }

  async destroy(id: string, options: SignalOptions = {}): Promise<void> {
    await this.withLock(id, async () => {
      const paths = this.paths(id);
      const rec = await readRecord(paths).catch(() => undefined);
      if (rec) await this.stopLocked(paths, rec, 0, options.signal);
      await this.host.cgroups?.removeWhenEmpty(id, {
        timeoutMs: this.host.killTimeoutMs,
        signal: options.signal,
      });
      // Its own layer only: the image below an overlay is the host's shared, read-only cache.
      await removeRootfs(paths, options.signal);
      await rm(paths.dir, { recursive: true, force: true });
      await rm(`${paths.dir}.incoming`, { recursive: true, force: true });
      this.host.leases.release(paths.dir);
      await this.host.ports.forget(id);
    });
  }

  // ------------------------------------------------------------------------------------------------
  // migration (cold): cold-migration.ts, through this driver's lock, stop and launch

  migrateOut(
    id: string,
    transport: MigrationTransport,
    options: MigrateOutOptions = {},
  ): Promise<MigrationReport> {
    return migrateOut(this.migrationHost(), id, transport, options);
  }

  migrateIn(spec: DomainSpec, incoming: IncomingMigration, options: SignalOptions = {}): Promise<DomainInfo> {
    return migrateIn(this.migrationHost(), spec, incoming, options);
  }

  copyLayer(id: string, out: Writable, options: SignalOptions = {}): Promise<{ bytes: number }> {
    return copyLayer(this.migrationHost(), id, out, options.signal);
  }

  private migrationHost(): MigrationHost {
    return {
      domainsDir: this.host.dir,
      paths: (id) => this.paths(id),
      withLock: (id, fn) => this.withLock(id, fn),
      stop: (paths, rec, signal) => this.stopLocked(paths, rec, this.host.defaultGraceMs, signal),
      // The uid came from the source host's range: this host leases its own and gives the files to it.
      startMoved: async (rec, paths) => {
        await this.ensureIdentity(rec, paths, true);
        await writeRecord(paths, rec);
        return this.describe(await this.launch(rec, paths));
      },
    };
  }
}
