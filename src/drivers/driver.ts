// The hypervisor driver interface: how a coordinator turns one ServiceInstance into one domain on its
// own host (a supervised process tree, a QEMU guest, a Xen guest) and observes it again after a restart.
// Controllers code against `Driver` only; every driver passes test/drivers/driver-contract.ts.

import type { Duplex, Writable } from 'node:stream';
import type { BootSpec, DiskSpec, NetworkSpec } from '../model/service-template.ts';

export const DRIVER_NAMES = ['process', 'qemu', 'xen'] as const;
export type DriverName = (typeof DRIVER_NAMES)[number];

export interface DriverCapabilities {
  /** Memory (and disk) move while the guest runs; downtime of milliseconds. */
  liveMigration: boolean;
  /** An interactive console (serial/hvc) can be attached. */
  console: boolean;
  /** `stats()` is implemented. */
  stats: boolean;
  /** Stop, move the domain's files, start on the peer. */
  coldMigration: boolean;
}

/** Who a domain belongs to. Stored with the domain so a restarted coordinator can match it to its instance. */
export interface InstanceIdentity {
  namespace: string;
  name: string;
  uid: string;
  templateName?: string;
  /** The instance's failover epoch (its fencing token) the domain was made under; absent: 0. */
  epoch?: number;
}

export interface DomainPort {
  /** The template port's name (`http`); also the env suffix `XENOS_PORT_HTTP`. */
  name: string;
  /** The port the service listens on inside the domain (the template's `port`). For the process
   *  driver there is no inside: the service must listen on the allocated host port it is given. */
  port: number;
  protocol: 'TCP' | 'UDP';
  appProtocol?: string;
}

export interface DomainResources {
  memoryBytes?: number;
  vcpus?: number;
  /** CPU time limit in millicores (1000 = one core). */
  cpuMillis?: number;
}

/** The program a process-driver domain runs. Strings may hold `${params.X}`, `${port.X}`, `${instance.name}`
 *  references (see params.ts); the driver expands them once host ports are allocated. */
export interface DomainProcess {
  command: string[];
  args?: string[];
  env?: Record<string, string>;
  /** Relative to the domain's root filesystem (the copy of the image). */
  workingDir?: string;
}

export interface DomainImage {
  /** Local path of the imported image: a file (raw/qcow2/tar) or a directory (see src/images/). */
  path: string;
  /** `sha256:<hex>`; `prepare` is a no-op when the domain already holds this digest. */
  digest?: string;
  format?: 'raw' | 'qcow2' | 'directory' | 'tar' | 'file';
}

/** Everything a driver needs to build and run one domain. Built by the instance controller. */
export interface DomainSpec {
  /** Deterministic: `domainIdFor(instance)`. Unique on the host; safe as a file and domain name. */
  id: string;
  instance: InstanceIdentity;
  image: DomainImage;
  /** Resolved parameter values (defaults applied, validated): what `${params.X}` expands to. */
  parameters?: Record<string, string>;
  process?: DomainProcess;
  ports?: DomainPort[];
  resources?: DomainResources;
  /** VM drivers only. */
  boot?: BootSpec;
  disks?: DiskSpec[];
  network?: NetworkSpec;
  /** The instance's notice-board token (see controllers/serviceinstance/credentials.ts). A secret: the
   *  driver hands it to the domain alone (the process driver: a file only the domain's uid can read, named
   *  by XENOS_TOKEN_FILE) and never stores it in the domain's record. */
  token?: string;
  /** A copy of this domain's disk layer, written by `copyLayer` on the host that ran it before a failover:
   *  `prepare` makes the domain's files from it instead of from the image when the domain has none here
   *  yet (and ignores it otherwise). */
  fromCopy?: LayerCopySource;
}

/** A copy of a domain's disk layer on this host's disk, and where and when it was taken. */
export interface LayerCopySource {
  path: string;
  host: string;
  takenAt: string;
}

export type DomainState = 'prepared' | 'running' | 'stopped' | 'crashed' | 'unknown';

export interface DomainEndpoint {
  name: string;
  /** Where clients connect: the host's advertised address. */
  address: string;
  /** The host port allocated for this domain; kept across restarts of the domain while it is free. */
  port: number;
  /** The port inside the domain (equal to `port` for the process driver). */
  guestPort: number;
  protocol: 'TCP' | 'UDP';
  url?: string;
}

/** Whether memory/CPU limits are really enforced for this domain, and why not if they are not. */
export interface LimitsReport {
  enforced: boolean;
  /** How: `cgroup-v2:/sys/fs/cgroup/xenos-<hash>/<id>`, `cgroup-v1:memory,cpu`, `qemu -m`, ... */
  mechanism?: string;
  reason?: string;
}

/** How a domain is isolated from the host and from other domains. */
export interface IsolationReport {
  sandboxed: boolean;
  /** `bubblewrap 0.8.0, own uid 2000000003`, `bubblewrap 0.8.0, user namespace`, ... */
  mechanism?: string;
  /** The host uid the domain's processes run as. */
  uid?: number;
  /** Why not sandboxed. */
  reason?: string;
}

/** How a domain's disk (its root filesystem, for the process driver) was made from the template image,
 *  shown in the instance's `status.disk`. Copy-on-write (`Overlay`, `Reflink`, `Qcow2Overlay`) shares the
 *  image's bytes; `Copy` is a whole private copy (the file system can do neither). */
export interface DiskReport {
  mode: 'Overlay' | 'Reflink' | 'Copy' | 'Qcow2Overlay';
  /** For people: what backs it, or why it is a plain copy. */
  message: string;
  /** Made from a copy of its disk layer taken on another host (DomainSpec.fromCopy), not from the image. */
  fromCopy?: { host: string; takenAt: string };
}

/** A fact about the host a driver reports for the Host object's conditions (e.g. `DomainsSandboxed`). */
export interface HostConditionFact {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

export interface DomainInfo {
  id: string;
  driver: DriverName;
  instance: InstanceIdentity;
  /** `prepared`: files exist, never started. `stopped`: exited 0 or stopped on request. `crashed`: exited
   *  non-zero or killed by a signal nobody here sent. `unknown`: cannot tell (say why in `message`). */
  state: DomainState;
  imageDigest?: string;
  pid?: number;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  /** The signal that ended the domain, when known (`SIGKILL`). */
  signal?: string;
  /** How many times the domain was started after its first start on this host. */
  restartCount: number;
  endpoints: DomainEndpoint[];
  limits?: LimitsReport;
  isolation?: IsolationReport;
  /** How its disk was made from the image (copy-on-write or not), once prepared. */
  disk?: DiskReport;
  message?: string;
}

export interface DomainStats {
  cpuSeconds: number;
  memoryBytes: number;
}

export interface LogChunk {
  stream: 'stdout' | 'stderr' | 'console';
  data: Buffer;
}

export interface LogOptions {
  /** Keep streaming new output until `signal` aborts (tail -f). */
  follow?: boolean;
  /** Start with only the last N lines of each stream. */
  tail?: number;
  signal?: AbortSignal;
}

export interface ExecResult {
  exitCode: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

/** The source side's way to reach the destination's `migrateIn`: one labelled byte stream per call
 *  (`domain-dir` for a cold move, `memory` and `disk` for QEMU). Made by the migration controller,
 *  tunnelled over libp2p between hosts. */
export interface MigrationTransport {
  open(label: string, options: { signal?: AbortSignal }): Promise<Duplex>;
}

/** The destination side: the streams the source opened, in order. */
export type IncomingMigration = AsyncIterable<{ label: string; stream: Duplex }>;

/** How far a migration is, reported by the source's `migrateOut` as it goes (for the ServiceMigration's
 *  status and `xenosctl migrate --wait`). */
export interface MigrationProgress {
  /** What the migration is doing: `disk` (copying the instance's own disk layer), `memory`, `switchover`
   *  (the guest paused, the last bytes moving), `files` (a cold move). */
  stage: 'disk' | 'memory' | 'switchover' | 'files';
  /** Bytes sent to the destination so far (memory and disk). */
  bytesTransferred: number;
  /** What the driver expects to send in all, when it can tell (it grows if the guest dirties memory). */
  bytesTotal?: number;
  /** Bytes per second of memory the guest dirties, as the hypervisor last measured it (live only). */
  dirtyRateBytesPerSecond?: number;
}

export interface MigrateOutOptions extends SignalOptions {
  mode?: 'auto' | 'live' | 'cold';
  /** Called as the migration goes, at most a few times a second. */
  onProgress?(progress: MigrationProgress): void;
  /** The commit point of a live move (the caller's: e.g. binding the instance to the target). The driver
   *  calls it at the switchover, with the source's copy stopped for good and the destination holding all
   *  state; once it resolves the destination runs the guest, if it throws the source runs it again. Without
   *  it, the driver's own word to the destination is the commit point. */
  commit?(): Promise<void>;
}

export interface MigrateInOptions extends SignalOptions {
  /** Resolves when the caller saw the move committed (see MigrateOutOptions.commit): the destination then
   *  runs the guest even if the source's own word never arrives (the link broke after the commit). */
  committed?: Promise<void>;
}

export interface MigrationReport {
  mode: 'live' | 'cold';
  /** From the moment the service stopped answering on the source until it ran on the destination,
   *  as far as the source can tell. */
  downtimeMs?: number;
  bytesTransferred: number;
  /** What happened, for people, when the mode alone does not say it (a cold move that kept the guest's
   *  memory: Xen's save and restore). */
  how?: string;
}

export interface SignalOptions {
  signal?: AbortSignal;
}

export interface StopOptions extends SignalOptions {
  /** How long to wait after the polite request (SIGTERM, ACPI shutdown, `xl shutdown`) before forcing. */
  graceMs?: number;
}

export interface ProbeResult {
  usable: boolean;
  reason?: string;
}

export interface Driver {
  readonly name: DriverName;
  readonly capabilities: DriverCapabilities;

  /** Starts background work (none for some drivers). A second call does nothing. */
  start(): Promise<void>;
  /** Stops background work. Domains keep running: they outlive the coordinator. */
  stop(): Promise<void>;
  /** Can this driver run domains on this host? Never throws. */
  probe(options?: SignalOptions): Promise<ProbeResult>;
  /** What the Host object should say about this driver's domains (isolation, limits), as last seen. */
  hostConditions?(): HostConditionFact[];

  /** Creates the domain's directory and disk from the template image (copy-on-write where the file system
   *  allows). Idempotent: the same spec twice does nothing more. Returns the domain, `prepared` or as it is. */
  prepare(spec: DomainSpec, options?: SignalOptions): Promise<DomainInfo>;
  /** Starts the prepared domain (preparing it first if needed). If it already runs, returns it unchanged:
   *  never a second copy. */
  startDomain(spec: DomainSpec, options?: SignalOptions): Promise<DomainInfo>;
  /** Politely stops the domain, then forces it after `graceMs`. Stopping a stopped domain does nothing. */
  stopDomain(id: string, options?: StopOptions): Promise<DomainInfo | undefined>;
  /** Forces the domain off if needed and removes its files. Unknown ids are fine. */
  destroy(id: string, options?: SignalOptions): Promise<void>;

  /** Every domain of this driver on this host, running or not: the source of truth for adoption. */
  list(options?: SignalOptions): Promise<DomainInfo[]>;
  inspect(id: string, options?: SignalOptions): Promise<DomainInfo | undefined>;
  stats?(id: string, options?: SignalOptions): Promise<DomainStats | undefined>;
  logs(id: string, options?: LogOptions): AsyncIterable<LogChunk>;
  /** Runs a command inside the running domain (the process driver: in its sandbox, as its uid, with its
   *  env; a guest agent for VMs). */
  exec?(id: string, command: string[], options?: SignalOptions & { timeoutMs?: number }): Promise<ExecResult>;

  /** Moves the domain to the peer behind `transport`. Leaves the local copy stopped (not destroyed) so the
   *  caller can roll back; the caller destroys it once the destination reports it running. */
  migrateOut(
    id: string,
    transport: MigrationTransport,
    options?: MigrateOutOptions,
  ): Promise<MigrationReport>;
  /** Receives a domain sent by a peer's `migrateOut` and runs it here. */
  migrateIn(spec: DomainSpec, incoming: IncomingMigration, options?: MigrateInOptions): Promise<DomainInfo>;

  /** Writes a copy of the running domain's own disk layer to `out` without stopping it, for another host to
   *  keep (failover's copies; `DomainSpec.fromCopy` starts a domain from one). Drivers without it keep no
   *  copies: their instances fail over from the image. */
  copyLayer?(id: string, out: Writable, options?: SignalOptions): Promise<{ bytes: number }>;
}

/** The deterministic domain id of an instance: `xenos-<ns>-<name>-<uid8>`, lower-case, safe as a file name,
 *  a Xen domain name and a cgroup name; at most 63 characters. */
export function domainIdFor(instance: InstanceIdentity): string {
  const clean = (s: string) =>
    s
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '');
  const uid8 = clean(instance.uid).replace(/-/g, '').slice(0, 8);
  const ns = clean(instance.namespace || 'default').slice(0, 16);
  const name = clean(instance.name).slice(0, 63 - 'xenos-'.length - ns.length - uid8.length - 2);
  return `xenos-${ns}-${name}-${uid8}`;
}

/** A domain id is safe to use as a path segment and process/cgroup name. */
export const DOMAIN_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
