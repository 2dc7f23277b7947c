// The Xen driver: a domain is a Xen guest run through the `xl` toolstack in dom0, as in the paper. Its
// files are a VM domain's (the record domain.json, qcow2 overlays on the template image's disk: vm-disks.ts)
// plus the xl config xlConfig() builds from the spec (xl-config.ts); its state is Xen's (`xl list`), read by
// the domain's name, which is its deterministic id: a restarted xenosd finds its domains there, and there is
// never a second domain of one name on a host. How a run ended comes from xl's own monitor log ("has shut
// down, reason code N"), so it outlives xenosd. The guest's console is xenconsoled's log of it.
//
// A guest is created paused, handed its instance token through xenstore (readable by it and dom0 alone),
// then unpaused. `network.mode: user` puts it on the driver's bridge with a fixed address and forwards the
// template's ports to it (xen-network.ts). The guest is isolated by the hypervisor: it sees nothing of dom0.
// A PVH domain moves live through `xl migrate` (live-migration.ts), PV and HVM domains by save, copy and
// restore (saved-migration.ts); what it lends those two is migration-host.ts, built from its own pieces.
// README.md beside this file says it all. Over 400 lines because it is every verb of the Driver over one
// toolstack; each is short.

import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { type Log, silentLogger } from '../../log/logger.ts';
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
import { DomainNotFoundError, InvalidDomainSpecError, MigrationError, StartError } from '../errors.ts';
import { HostLeases } from '../host-leases.ts';
import { KeyedLock } from '../keyed-lock.ts';
import { streamLogFiles } from '../log-files.ts';
import { acceptMigration } from '../migration-control.ts';
import {
  checkedDomainId,
  type DomainRecord,
  readAllRecords,
  readRecord,
  writeRecord,
} from '../process/domain-record.ts';
import { endpoints } from '../process/domain-state.ts';
import { PortBook } from '../process/port-book.ts';
import { prepareVmFiles } from '../vm-disks.ts';
import { planDisks, resolveVmImage, type VmImage } from '../vm-image.ts';
import { guestSize, macAddress } from '../vm-shape.ts';
import { xenDomainInfo } from './domain-info.ts';
import { XenPaths } from './domain-paths.ts';
import { migrateInLive, migrateOutLive } from './live-migration.ts';
import { migrationHosts } from './migration-host.ts';
import { probeXen } from './probe-xen.ts';
import { migrateInSaved, migrateOutSaved } from './saved-migration.ts';
import { userNetwork, XenNetwork, type XenNetworkInit } from './xen-network.ts';
import { CONSOLE_LOG_DIR, XL_LOG_DIR, Xl, type XlMake } from './xl.ts';
import { XEN_OUI, type XenDisk, xenTypeOf, xlConfig } from './xl-config.ts';
import { domainState, type XlListRow } from './xl-list.ts';

const runTool = promisify(execFile);
const MiB = 1024 * 1024;
const DEFAULT_GRACE_MS = 60_000;

export interface XenDriverComponents {
  log?: Log;
  /** Machine-wide port and address leases. Default: the machine's. */
  leases?: HostLeases;
}

export interface XenDriverInit {
  /** The coordinator's data directory; domains live in `<dataDir>/xen/<id>/`. */
  dataDir: string;
  /** Where endpoints are advertised and the port forwards listen. Default 127.0.0.1. */
  advertiseAddress?: string;
  /** Grace between `xl shutdown` and `xl destroy`. Default 60 s. */
  defaultGraceMs?: number;
  /** The user network's bridge and subnet (xen-network.ts). */
  network?: Omit<XenNetworkInit, 'listenAddress'>;
  /** The xl binary. Default `xl`. */
  xl?: string;
}

/** The user network relays TCP only: a UDP port would be published and never reach the guest. */
function checkRelayable(spec: DomainSpec): void {
  if (!userNetwork(spec)) return;
  const i = (spec.ports ?? []).findIndex((p) => p.protocol !== 'TCP');
  if (i >= 0) {
    throw new InvalidDomainSpecError(
      spec.id,
      'the Xen user network relays TCP ports only (UDP is not built yet); use network mode bridge for UDP',
      `spec.ports[${i}].protocol`,
    );
  }
}

/** The guest's disks as xl sees them: the common plan (planDisks; the buses are xlConfig's to check, xvd,
 *  or ide for hvm), each a qcow2 file of the domain's own. */
function xenDisks(spec: DomainSpec, image: VmImage, paths: XenPaths): XenDisk[] {
  return planDisks(spec, image).map((d) => ({
    name: d.name,
    path: paths.disk(d.name),
    format: 'qcow2',
    readOnly: d.readOnly,
    bus: d.bus,
  }));
}

export class XenDriver implements Driver {
  readonly name = 'xen' as const;
  readonly capabilities: DriverCapabilities = {
    liveMigration: true,
    console: true,
    stats: true,
    coldMigration: true,
  };

  readonly dir: string;
  private readonly log: Log;
  private readonly advertiseAddress: string;
  private readonly defaultGraceMs: number;
  private readonly leases: HostLeases;
  private readonly ports: PortBook;
  private readonly locks = new KeyedLock();
  private readonly xl: Xl;
  readonly network: XenNetwork;

  constructor(components: XenDriverComponents, init: XenDriverInit) {
    this.log = components.log ?? silentLogger.root;
    this.dir = `${init.dataDir.replace(/\/+$/, '')}/xen`;
    this.advertiseAddress = init.advertiseAddress ?? '127.0.0.1';
    this.defaultGraceMs = init.defaultGraceMs ?? DEFAULT_GRACE_MS;
    this.leases = components.leases ?? new HostLeases();
    this.ports = new PortBook({ leases: this.leases }, { domainsDir: this.dir });
    this.xl = new Xl(init.xl);
    this.network = new XenNetwork(
      { log: this.log, leases: this.leases },
      { ...init.network, listenAddress: this.advertiseAddress },
    );
  }

  /** Makes the domains' directory and relays the ports of the domains still running (a restarted xenosd). */
  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const rows = await this.xl.list().catch(() => [] as XlListRow[]);
    for (const rec of await this.records()) {
      const row = rows.find((r) => r.name === rec.spec.id);
      if (rec.run && row && domainState(row.flags) === 'running') await this.relay(rec);
    }
  }

  /** Domains keep running: only the port relays and the leases' database go. */
  async stop(): Promise<void> {
    await this.network.close();
    this.leases.close();
  }

  probe(options: SignalOptions = {}): Promise<ProbeResult> {
    return probeXen(options);
  }

  hostConditions(): HostConditionFact[] {
    return [
      {
        type: 'DomainsSandboxed',
        status: 'True',
        reason: 'XenDomains',
        message:
          'each domain is a Xen guest: the hypervisor keeps it from dom0 and from the other guests; its disks are served by QEMU in dom0',
      },
      {
        type: 'DomainLimitsEnforced',
        status: 'True',
        reason: 'XenDomains',
        message: 'memory and vCPUs are the domain’s own, fixed by Xen (no ballooning)',
      },
    ];
  }

  private paths(id: string): XenPaths {
    return new XenPaths(this.dir, checkedDomainId(id));
  }

  private async records(): Promise<DomainRecord[]> {
    return readAllRecords(this.dir, (id, err) =>
      this.log.warn(`domain ${id}: unreadable record, skipped: ${err.message}`),
    );
  }

  // ------------------------------------------------------------------------------------------------
  // prepare / start

  private prepareFiles(spec: DomainSpec, signal?: AbortSignal): Promise<DomainRecord> {
    return prepareVmFiles(this.paths(spec.id), spec, {
      plan: planDisks,
      // The run is a Xen domain, not a process: xl says whether it still runs.
      alive: async () => {
        const row = await this.xl.row(spec.id, { signal });
        return row !== undefined && domainState(row.flags) === 'running';
      },
      signal,
    });
  }

  prepare(spec: DomainSpec, options: SignalOptions = {}): Promise<DomainInfo> {
    return this.locks.run(spec.id, async () => this.describe(await this.prepareFiles(spec, options.signal)));
  }

  startDomain(spec: DomainSpec, options: SignalOptions = {}): Promise<DomainInfo> {
    return this.locks.run(spec.id, async () => {
      const rec = await this.prepareFiles(spec, options.signal);
      const row = await this.xl.row(spec.id, options);
      if (row && domainState(row.flags) === 'running') {
        await this.relay(rec);
        return this.describe(rec, row);
      }
      // A crashed domain xl kept, or one still shutting down: gone before the new one comes.
      if (row) await this.xl.destroy(spec.id, options);
      options.signal?.throwIfAborted();
      const paths = this.paths(spec.id);
      await this.stage(spec, rec);
      const make = {
        verb: 'create' as const,
        run: (s?: AbortSignal) => this.xl.createPaused(paths.config, { signal: s }),
      };
      return this.bring(spec, rec, make, options.signal);
    });
  }

  /** The domain's ports, its address on the user network (`address`, when it must keep one) and its xl
   *  config, written; returns the config. */
  private async stage(spec: DomainSpec, rec: DomainRecord, address?: string): Promise<string> {
    checkRelayable(spec);
    const paths = this.paths(spec.id);
    await this.network.unforward(spec.id);
    rec.ports = await this.ports.allocate(spec, rec.ports, paths.dir);
    const config = await this.config(spec, rec.ports, paths);
    if (userNetwork(spec)) {
      await this.network.attach(spec.id, macAddress(spec.id, XEN_OUI), paths.dir, address);
    }
    await writeFile(paths.config, config, { mode: 0o600 });
    return config;
  }

  /** Runs the staged domain: made by `make` (created from its config, restored from a checkpoint, or
   *  received from a live move), given its token and unpaused; recorded, its ports relayed. */
  private async bring(
    spec: DomainSpec,
    rec: DomainRecord,
    make: XlMake,
    signal?: AbortSignal,
  ): Promise<DomainInfo> {
    const paths = this.paths(spec.id);
    const startedAt = new Date().toISOString();
    const created = await this.create(spec, make, signal);
    const { memoryMiB, vcpus } = guestSize(spec);
    if (rec.run && make.verb === 'create') rec.restartCount += 1;
    rec.run = {
      pid: created.domid,
      startTime: 0,
      startedAt,
      command: ['xl', make.verb, paths.config],
      env: {},
      cwd: paths.dir,
      limits: { enforced: true, mechanism: `xen ${xenTypeOf(spec)} memory=${memoryMiB}M vcpus=${vcpus}` },
      isolation: { sandboxed: true, mechanism: `Xen domain ${created.domid}` },
    };
    await writeRecord(paths, rec);
    await this.relay(rec);
    return this.describe(rec, created);
  }

  /** The xl config of the spec, with the image's kernel and the domain's own disks. */
  private async config(spec: DomainSpec, ports: Record<string, number>, paths: XenPaths): Promise<string> {
    const image = await resolveVmImage(spec);
    return xlConfig({
      spec,
      kernel: image.kernel?.host,
      ramdisk: image.initrd?.host,
      ports,
      disks: xenDisks(spec, image, paths),
    });
  }

  /** `make` (the domain paused), the token into xenstore, unpause. A domain that fails half way is
   *  destroyed. */
  private async create(spec: DomainSpec, make: XlMake, signal?: AbortSignal): Promise<XlListRow> {
    try {
      await make.run(signal);
    } catch (err) {
      await this.xl.destroy(spec.id).catch(() => {});
      throw new StartError(spec.id, (err as Error).message, { cause: err });
    }
    try {
      const row = await this.xl.row(spec.id);
      if (!row) throw new Error(`xl ${make.verb} returned but the domain is not listed`);
      if (spec.token !== undefined) await this.giveToken(row.domid, spec.token);
      await this.xl.unpause(spec.id, { signal });
      return row;
    } catch (err) {
      await this.xl.destroy(spec.id).catch(() => {});
      throw new StartError(spec.id, (err as Error).message, { cause: err });
    }
  }

  /** The instance token at `xenos/token` in the guest's own xenstore directory: dom0 owns it, the guest
   *  may read it, no other guest can. */
  private async giveToken(domid: number, token: string): Promise<void> {
    const key = `/local/domain/${domid}/xenos/token`;
    await runTool('xenstore-write', [key, token], { timeout: 10_000 });
    await runTool('xenstore-chmod', [key, 'n0', `r${domid}`], { timeout: 10_000 });
  }

  /** Relays the host ports of a user-network guest to its address. */
  private async relay(rec: DomainRecord): Promise<void> {
    if (!userNetwork(rec.spec)) return;
    const address = this.network.addressOf(this.paths(rec.spec.id).dir);
    if (!address) return;
    const forwards = (rec.spec.ports ?? [])
      .filter((p) => p.protocol === 'TCP' && rec.ports[p.name] !== undefined)
      .map((p) => ({ hostPort: rec.ports[p.name], guestPort: p.port }));
    await this.network.forward(rec.spec.id, address, forwards);
  }

  // ------------------------------------------------------------------------------------------------
  // observe

  private async describe(rec: DomainRecord, known?: XlListRow): Promise<DomainInfo> {
    const seen = { endpoints: userNetwork(rec.spec) ? endpoints(rec, this.advertiseAddress, true) : [] };
    if (!rec.run) return xenDomainInfo(rec, seen);
    const row = known ?? (await this.xl.row(rec.spec.id));
    const running = row && domainState(row.flags) === 'running';
    const ended = running ? undefined : await this.xl.lastShutdown(rec.spec.id);
    return xenDomainInfo(rec, { ...seen, row, ended });
  }

  async inspect(id: string): Promise<DomainInfo | undefined> {
    const rec = await readRecord(this.paths(id));
    return rec ? this.describe(rec) : undefined;
  }

  async list(): Promise<DomainInfo[]> {
    const rows = await this.xl.list();
    return Promise.all(
      (await this.records()).map((rec) =>
        this.describe(
          rec,
          rows.find((r) => r.name === rec.spec.id),
        ),
      ),
    );
  }

  async stats(id: string): Promise<DomainStats | undefined> {
    const row = await this.xl.row(this.paths(id).id);
    if (!row || domainState(row.flags) !== 'running') return undefined;
    return { cpuSeconds: row.cpuSeconds, memoryBytes: row.memoryMiB * MiB };
  }

  async *logs(id: string, options: LogOptions = {}): AsyncGenerator<LogChunk> {
    if (!(await readRecord(this.paths(id)))) throw new DomainNotFoundError(id, this.dir);
    yield* streamLogFiles(
      [
        { stream: 'console', path: `${CONSOLE_LOG_DIR}/guest-${id}.log` },
        { stream: 'stderr', path: `${XL_LOG_DIR}/xl-${id}.log` },
      ],
      options,
    );
  }

  // ------------------------------------------------------------------------------------------------
  // stop / destroy

  stopDomain(id: string, options: StopOptions = {}): Promise<DomainInfo | undefined> {
    return this.locks.run(id, async () => {
      const paths = this.paths(id);
      const rec = await readRecord(paths);
      if (!rec) return undefined;
      await this.stopLocked(paths, rec, options.graceMs ?? this.defaultGraceMs, options.signal);
      return this.describe(rec);
    });
  }

  private async stopLocked(
    paths: XenPaths,
    rec: DomainRecord,
    graceMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.network.unforward(rec.spec.id);
    const row = await this.xl.row(rec.spec.id, { signal });
    if (!row || !rec.run) return;
    if (domainState(row.flags) === 'running') {
      rec.run.stopRequestedAt = new Date().toISOString();
      await writeRecord(paths, rec);
      if (graceMs > 0 && (await this.xl.shutdown(rec.spec.id, graceMs, { signal }))) return;
      rec.run.forcedAt = new Date().toISOString();
      await writeRecord(paths, rec);
    }
    // Forced, or a crashed domain xl kept: it goes now (its state stays readable from xl's log).
    await this.xl.destroy(rec.spec.id, { signal });
  }

  destroy(id: string, options: SignalOptions = {}): Promise<void> {
    return this.locks.run(id, () => this.destroyLocked(id, options.signal));
  }

  private async destroyLocked(id: string, signal?: AbortSignal): Promise<void> {
    const paths = this.paths(id);
    const rec = await readRecord(paths).catch(() => undefined);
    if (rec) await this.stopLocked(paths, rec, 0, signal);
    else await this.xl.destroy(id, { signal });
    await this.network.detach(id, macAddress(id, XEN_OUI), paths.dir);
    // Its own disks only: the image below the overlays is the host's shared, read-only cache.
    await rm(paths.dir, { recursive: true, force: true });
    this.leases.release(paths.dir);
    await this.ports.forget(id);
  }

  // ------------------------------------------------------------------------------------------------
  // migration

  /** PVH: live (live-migration.ts), the guest paused for the last memory round and its disk layer. PV
   *  and HVM, or when asked for `cold`: saved, copied, restored (saved-migration.ts), the guest paused
   *  for the whole copy. Both keep the guest's memory. */
  async migrateOut(
    id: string,
    transport: MigrationTransport,
    options: MigrateOutOptions = {},
  ): Promise<MigrationReport> {
    const rec = await readRecord(this.paths(id));
    const type = rec ? xenTypeOf(rec.spec) : undefined;
    if (options.mode === 'live' && type !== undefined && type !== 'pvh') {
      throw new MigrationError(
        id,
        `a ${type.toUpperCase()} domain cannot move live here (Debian's Xen cannot live-migrate PV guests, and HVM is not proven); ask for mode cold: it is saved, copied and restored with its memory, or make the template PVH`,
      );
    }
    if (type === 'pvh' && options.mode !== 'cold') {
      return migrateOutLive(this.migration.live, id, transport, options);
    }
    return migrateOutSaved(this.migration.saved, id, transport, options);
  }

  async migrateIn(
    spec: DomainSpec,
    incoming: IncomingMigration,
    options: MigrateInOptions = {},
  ): Promise<DomainInfo> {
    const { control, streams, hello } = await acceptMigration(
      spec.id,
      incoming,
      async () => ({ ...guestSize(spec), disks: await this.disksOf(spec) }),
      { signal: options.signal },
    );
    if (hello.mode === 'live') {
      return migrateInLive(this.migration.live, spec, control, hello.address, streams, options);
    }
    return migrateInSaved(this.migration.saved, spec, control, hello.address, streams, options);
  }

  private async disksOf(spec: DomainSpec): Promise<XenDisk[]> {
    return xenDisks(spec, await resolveVmImage(spec), this.paths(spec.id));
  }

  private migrationParts?: ReturnType<typeof migrationHosts>;

  /** The live and the saved move's hosts (migration-host.ts), made of the driver's own pieces. */
  private get migration(): ReturnType<typeof migrationHosts> {
    this.migrationParts ??= migrationHosts({
      xl: this.xl,
      network: this.network,
      paths: (id) => this.paths(id),
      withLock: (id, fn) => this.locks.run(id, fn),
      prepareFiles: (spec, signal) => this.prepareFiles(spec, signal),
      stage: (spec, rec, address) => this.stage(spec, rec, address),
      bring: (spec, rec, make, signal) => this.bring(spec, rec, make, signal),
      destroyLocked: (id, signal) => this.destroyLocked(id, signal),
      destroy: (id) => this.destroy(id),
      disksOf: (spec) => this.disksOf(spec),
    });
    return this.migrationParts;
  }
}
