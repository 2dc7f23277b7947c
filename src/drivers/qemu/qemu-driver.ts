// The QEMU driver: a domain is a QEMU guest (KVM where the host has it, TCG otherwise) booted from its
// template image, controlled over QMP. It is the process driver's machinery with QEMU as the program:
// the same domain record and per-domain lock, the same detached sh supervisor that keeps QEMU's exit
// code across xenosd restarts (so guests outlive xenosd and a new driver adopts them from `list()`), the
// same bubblewrap sandbox with the domain's own uid, cgroups, host-port leases and rotated logs. What is
// QEMU's own lives here: the disks and record (prepare-vm.ts), the command line (qemu-command.ts), the
// sandbox plan (launch-vm.ts), a polite stop through the guest's ACPI power button, the serial console
// as the `console` log stream, and one QMP connection per running guest (qmp.ts). README.md says it all.
// Over 400 lines because it is the Driver interface for QEMU, one method per operation; the launch,
// migration and copy pieces are in files of their own.

import { readFile, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Writable } from 'node:stream';
import type {
  DomainInfo,
  DomainSpec,
  DomainStats,
  Driver,
  DriverCapabilities,
  HostConditionFact,
  IncomingMigration,
  LogChunk,
  LogOptions,
  MigrateInOptions,
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
import { DomainHost, type DomainHostComponents, type DomainHostOptions } from '../process/domain-host.ts';
import {
  checkedDomainId,
  type DomainRecord,
  type RunRecord,
  readAllRecords,
  readRecord,
} from '../process/domain-record.ts';
import { describeDomain, domainAlive } from '../process/domain-state.ts';
import { launchDomain } from '../process/launch-domain.ts';
import { CLOCK_TICKS_PER_SECOND, isAlive, residentBytes } from '../process/proc.ts';
import { descendants } from '../process/process-tree.ts';
import { stopDomainTree } from '../process/stop-domain.ts';
import { migrateInCold, migrateOutCold } from './cold-migration.ts';
import { GuestMonitors } from './guest-monitors.ts';
import { vmCgroupResources, vmPlanner } from './launch-vm.ts';
import { copyVmLayer, installVmCopy } from './layer-copy.ts';
import { migrateOutLive, receiveMigration } from './live-migration.ts';
import { migrationHost } from './migration-host.ts';
import { LIVE_DEFAULTS, type LiveMigrationTuning, resumeAfterMigration } from './migration-monitor.ts';
import { prepareVm } from './prepare-vm.ts';
import { probeQemu } from './probe-qemu.ts';
import type { Accel } from './qemu-command.ts';
import type { QmpClient } from './qmp.ts';
import { VmPaths } from './vm-layout.ts';

export type QemuDriverComponents = DomainHostComponents;

/** Guests live in `<dataDir>/vms/<id>/`; port forwards listen on the advertised address. */
export interface QemuDriverInit extends DomainHostOptions {
  /** The QEMU binary. Default `qemu-system-x86_64`. */
  binary?: string;
  /** Force an accelerator; default: KVM when the host has it, else TCG. */
  accel?: Accel;
  /** Grace between the ACPI power button and the kill. Default 30 s (a guest shuts down slower than a
   *  process). */
  defaultGraceMs?: number;
  /** UEFI firmware code (disk boot with firmware: uefi). Default: Debian's OVMF when installed. */
  uefiCode?: string;
  /** Live migration tuning (migration-monitor.ts has the defaults). */
  migration?: LiveMigrationTuning;
}

const DEFAULT_GRACE_MS = 30_000;
const DEFAULT_UEFI_CODE = '/usr/share/OVMF/OVMF_CODE.fd';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export class QemuDriver implements Driver {
  readonly name = 'qemu' as const;
  readonly capabilities: DriverCapabilities = {
    liveMigration: true,
    console: true,
    stats: true,
    coldMigration: true,
  };

  private readonly host: DomainHost;
  private readonly binary: string;
  private readonly uefiCode: string;
  private readonly monitors: GuestMonitors;
  private readonly tuning: Required<LiveMigrationTuning>;
  private accel?: Accel;
  private conditions: HostConditionFact[] = [];

  constructor(components: QemuDriverComponents, init: QemuDriverInit) {
    this.host = new DomainHost(components, {
      ...init,
      folder: 'vms',
      defaultGraceMs: init.defaultGraceMs ?? DEFAULT_GRACE_MS,
    });
    this.binary = init.binary ?? 'qemu-system-x86_64';
    this.accel = init.accel;
    this.uefiCode = init.uefiCode ?? DEFAULT_UEFI_CODE;
    this.monitors = new GuestMonitors({ log: this.host.log }, { paths: (id) => this.paths(id) });
    this.tuning = { ...LIVE_DEFAULTS, ...init.migration };
  }

  async start(): Promise<void> {
    await this.host.start();
    await this.refreshConditions();
  }

  async stop(): Promise<void> {
    // Guests keep running: only this process's monitor connections go.
    await this.monitors.closeAll();
    await this.host.stop();
  }

  async probe(options: SignalOptions = {}): Promise<ProbeResult> {
    const probe = await probeQemu({ binary: this.binary, signal: options.signal });
    if (!probe.usable) return { usable: false, reason: probe.reason };
    this.accel ??= probe.accel;
    return { usable: true };
  }

  private async chosenAccel(): Promise<Accel> {
    if (!this.accel) await this.probe();
    return this.accel ?? 'tcg';
  }

  hostConditions(): HostConditionFact[] {
    return this.conditions;
  }

  private async refreshConditions(): Promise<void> {
    const { facts } = await this.host.conditions('QEMU guests');
    const accel = await this.chosenAccel();
    this.conditions = [
      ...facts,
      {
        type: 'GuestsHardwareAccelerated',
        status: accel === 'kvm' ? 'True' : 'False',
        reason: accel === 'kvm' ? 'KVM' : 'TCG',
        message:
          accel === 'kvm'
            ? 'QEMU guests run with KVM'
            : 'QEMU guests run under TCG emulation (no usable KVM here): several times slower than KVM',
      },
    ];
  }

  private paths(id: string): VmPaths {
    return new VmPaths(this.host.dir, checkedDomainId(id));
  }

  private withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.host.withLock(id, fn);
  }

  // ------------------------------------------------------------------------------------------------
  // prepare / start

  prepare(spec: DomainSpec, options: SignalOptions = {}): Promise<DomainInfo> {
    return this.withLock(spec.id, async () =>
      this.describe(await this.prepareFiles(this.paths(spec.id), spec, options.signal)),
    );
  }

  /** Under the lock: the domain's files, from the copy of its disks on a failover's first start here
   *  (layer-copy.ts), else from the image. */
  private prepareFiles(paths: VmPaths, spec: DomainSpec, signal?: AbortSignal): Promise<DomainRecord> {
    const fromImage = () => prepareVm(paths, spec, this.host.sandbox, signal);
    return prepareFromCopyOrImage(
      paths,
      spec,
      {
        fromCopy: async (copy) => {
          const rec = await fromImage();
          try {
            return await installVmCopy(paths, rec, await this.migrationHost.disksOf(spec), copy, signal);
          } catch (err) {
            await this.destroyLocked(spec.id).catch(() => {});
            throw err;
          }
        },
        fromImage,
        log: this.host.log,
      },
      signal,
    );
  }

  copyLayer(id: string, out: Writable, options: SignalOptions = {}): Promise<{ bytes: number }> {
    return copyVmLayer(this.migrationHost, id, out, options.signal);
  }

  startDomain(spec: DomainSpec, options: SignalOptions = {}): Promise<DomainInfo> {
    return this.withLock(spec.id, async () => {
      const paths = this.paths(spec.id);
      const rec = await this.prepareFiles(paths, spec, options.signal);
      if (rec.run && (await domainAlive(paths, rec.run))) {
        await resumeAfterMigration(await this.qmp(spec.id, options), spec.id);
        return this.describe(rec);
      }
      options.signal?.throwIfAborted();
      this.monitors.forget(spec.id);
      const launched = await this.launch(rec, paths);
      await this.monitors.sealAfterStart(launched, options.signal);
      return this.describe(launched);
    });
  }

  private async launch(rec: DomainRecord, paths: VmPaths, incoming = false): Promise<DomainRecord> {
    const accel = await this.chosenAccel();
    const uefi = await readFile(this.uefiCode).then(
      () => this.uefiCode,
      () => undefined,
    );
    return launchDomain(rec, paths, {
      sandbox: this.host.sandbox,
      sandboxChanged: async () => this.refreshConditions(),
      ports: this.host.ports,
      cgroups: this.host.cgroups,
      path: PATH,
      advertiseAddress: this.host.advertiseAddress,
      rotation: this.host.rotation,
      killTimeoutMs: this.host.killTimeoutMs,
      log: this.host.log,
      plan: vmPlanner({ accel, binary: this.binary, uefiCode: uefi, incoming }),
      cgroupResources: vmCgroupResources,
    });
  }

  // ------------------------------------------------------------------------------------------------
  // QMP

  /** The QMP connection of the running guest `id` (made on first use, kept while QEMU runs). Live
   *  migration uses the same one: QEMU's monitor serves one client at a time. */
  qmp(id: string, options: SignalOptions & { timeoutMs?: number } = {}): Promise<QmpClient> {
    return this.monitors.connect(id, options);
  }

  // ------------------------------------------------------------------------------------------------
  // observe

  private async describe(rec: DomainRecord): Promise<DomainInfo> {
    const paths = this.paths(rec.spec.id);
    const info = await describeDomain(paths, rec, this.host.advertiseAddress, {
      driver: 'qemu',
      guestPortInside: true,
    });
    if (info.state !== 'crashed') return info;
    const why = await this.complaint(rec.spec.id);
    return why ? { ...info, message: `${info.message}: ${why}` } : info;
  }

  /** QEMU's last word on its stderr (`qemu-system-x86_64: ...`): why it would not run (a bad option, a
   *  disk it cannot open) or why an incoming migration failed. */
  private async complaint(id: string): Promise<string | undefined> {
    const text = await readFile(this.paths(id).stderr, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((l) => l.startsWith(`${basename(this.binary)}:`))
      .pop();
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

  /** The host pid of the running guest's QEMU process (not the supervisor's, which `inspect` gives). */
  async qemuPidOf(id: string): Promise<number | undefined> {
    const rec = await readRecord(this.paths(id));
    if (!rec?.run || !(await isAlive(rec.run.pid, rec.run.startTime))) return undefined;
    return this.qemuPid(rec.run);
  }

  /** The QEMU process of a run: the supervisor's descendant running the QEMU binary. */
  private async qemuPid(run: RunRecord): Promise<number | undefined> {
    const name = basename(this.binary);
    for (const p of await descendants(run.pid)) {
      const argv0 = await readFile(`/proc/${p.pid}/cmdline`, 'utf8').then(
        (t) => t.split('\0')[0],
        () => '',
      );
      if (basename(argv0) === name) return p.pid;
    }
    return undefined;
  }

  async stats(id: string): Promise<DomainStats | undefined> {
    const pid = await this.qemuPidOf(id);
    if (pid === undefined) return undefined;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND, memoryBytes: await residentBytes(pid) };
  }

  async *logs(id: string, options: LogOptions = {}): AsyncGenerator<LogChunk> {
    const paths = this.paths(id);
    if (!(await readRecord(paths))) throw new DomainNotFoundError(id, this.host.dir);
    yield* streamLogFiles(
      [
        { stream: 'console', path: paths.console, rotated: this.host.rotation.keep },
        { stream: 'stderr', path: paths.stderr, rotated: this.host.rotation.keep },
      ],
      options,
    );
  }

  // ------------------------------------------------------------------------------------------------
  // stop / destroy

  stopDomain(id: string, options: StopOptions = {}): Promise<DomainInfo | undefined> {
    return this.withLock(id, async () => {
      const paths = this.paths(id);
      const rec = await readRecord(paths);
      if (!rec) return undefined;
      await this.stopLocked(paths, rec, options.graceMs ?? this.host.defaultGraceMs, options.signal);
      return this.describe(rec);
    });
  }

  private async stopLocked(
    paths: VmPaths,
    rec: DomainRecord,
    graceMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    await stopDomainTree(
      paths,
      rec,
      graceMs,
      {
        cgroups: this.host.cgroups,
        killTimeoutMs: this.host.killTimeoutMs,
        // Grace 0 is a force: a paused guest (a migrated one) would not hear the button anyway.
        politeStop: (_paths, _run, grace, sig) =>
          grace > 0 ? this.monitors.powerButton(rec.spec.id, grace, sig) : Promise.resolve(),
      },
      signal,
    );
    this.monitors.forget(rec.spec.id);
  }

  destroy(id: string, options: SignalOptions = {}): Promise<void> {
    return this.withLock(id, () => this.destroyLocked(id, options.signal));
  }

  /** destroy() under the lock (a migration's fresh files replace a stopped copy with it). */
  private async destroyLocked(id: string, signal?: AbortSignal): Promise<void> {
    const paths = this.paths(id);
    const rec = await readRecord(paths).catch(() => undefined);
    if (rec) await this.stopLocked(paths, rec, 0, signal);
    await this.host.cgroups?.removeWhenEmpty(id, { timeoutMs: this.host.killTimeoutMs, signal });
    // Its own disks only: the image below the overlays is the host's shared, read-only cache.
    await rm(paths.dir, { recursive: true, force: true });
    this.host.leases.release(paths.dir);
    await this.host.ports.forget(id);
  }

  // ------------------------------------------------------------------------------------------------
  // migration (live-migration.ts, cold-migration.ts; README.md, "Migration")

  private migrationParts?: ReturnType<typeof migrationHost>;

  private get migrationHost(): ReturnType<typeof migrationHost> {
    this.migrationParts ??= migrationHost({
      vmsDir: this.host.dir,
      paths: (id) => this.paths(id),
      withLock: (id, fn) => this.withLock(id, fn),
      destroyLocked: (id, signal) => this.destroyLocked(id, signal),
      prepare: (paths, spec, signal) => prepareVm(paths, spec, this.host.sandbox, signal),
      launchIncoming: async (rec, paths, signal) => {
        this.monitors.forget(rec.spec.id);
        const launched = await this.launch(rec, paths, true);
        await this.monitors.sealAfterStart(launched, signal);
        return launched;
      },
      qmp: (id, options) => this.qmp(id, options),
      stopDomain: (id, options) => this.stopDomain(id, options),
      startDomain: (spec, options) => this.startDomain(spec, options),
      destroy: (id) => this.destroy(id),
      inspect: (id) => this.inspect(id),
      complaint: (id) => this.complaint(id),
    });
    return this.migrationParts;
  }

  async migrateOut(
    id: string,
    transport: MigrationTransport,
    options: MigrateOutOptions = {},
  ): Promise<MigrationReport> {
    if (options.mode === 'cold') return migrateOutCold(this.migrationHost, id, transport, options);
    return migrateOutLive(this.migrationHost, id, transport, this.tuning, options);
  }

  async migrateIn(
    spec: DomainSpec,
    incoming: IncomingMigration,
    options: MigrateInOptions = {},
  ): Promise<DomainInfo> {
    return receiveMigration(this.migrationHost, spec, incoming, options, (control, streams) =>
      migrateInCold(this.migrationHost, spec, control, streams, options),
    );
  }
}
