// xenosd's command line: `xenosd --data-dir DIR --api HOST:PORT --host-name NAME`. Parsed with
// commander; a bad option is reported as one line (no stack trace) and exit code 2. A plain-HTTP API on
// an address beyond loopback is such a mistake unless --insecure-http says it is meant.
// Over 400 lines because it is xenosd's one table of flags and their checks, in the order `--help` prints
// them; the parsers of single values (durations, HOST:PORT, --controllers, --watch) are in option-values.ts.

import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DRIVER_CHOICES, type DriverChoice } from '../drivers/registry.ts';
import {
  DEFAULT_UID_RANGE,
  formatUidRange,
  parseUidRange,
  type UidRange,
} from '../drivers/sandbox/sandbox.ts';
import { isLoopbackHost } from '../images/address-policy.ts';
import { DEFAULT_MAX_IMAGE_BYTES } from '../images/download.ts';
import { DEFAULT_LOG_LEVEL, LOG_LEVELS, type LogLevel } from '../log/logger.ts';
import { DEFAULT_DATA_DIR } from '../model/data-dir.ts';
import { formatMemoryQuantity, parseMemoryQuantity } from '../model/quantity.ts';
import { DEFAULT_MAX_HEAP_MIB } from './heap-bound.ts';
import {
  DEFAULT_HEALTH_INTERVAL,
  DEFAULT_MIN_FREE_DISK,
  DEFAULT_MIN_FREE_MEMORY,
  type FreeBound,
  type HostHealthInit,
} from './host-health.ts';
import {
  collect,
  DEFAULT_API,
  disabledControllers,
  logLevel,
  OPTIONAL_CONTROLLERS,
  type OptionalController,
  parseDuration,
  parseHostPort,
  UsageError,
  watchedDirs,
} from './option-values.ts';

export interface DaemonOptions {
  dataDir: string;
  apiHost: string;
  /** 0 picks a free port; the chosen address is written to DATA_DIR/api.addr. */
  apiPort: number;
  hostName: string;
  crdDir?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Serve HTTPS with DATA_DIR/tls.crt|key, made with openssl on first start. */
  tlsSelfSigned?: boolean;
  /** Plain HTTP on an address beyond loopback was asked for (`--insecure-http`): warn at every start. */
  insecureHttp: boolean;
  /** The p2p overlay: listen address (`--p2p`), cluster key file, bootstrap multiaddrs (`--join`). */
  p2p?: { listen: string; clusterKeyFile: string; join: string[] };
  /** Image URLs may lead to private, loopback and other special addresses (`--allow-private-image-urls`). */
  allowPrivateImageUrls: boolean;
  /** Special addresses image URLs may lead to all the same (`--allow-image-url-address`, repeatable). */
  allowedImageAddresses: string[];
  /** The largest image a URL import downloads or an upload sends (`--max-image-size`), in bytes. */
  maxImageBytes: number;
  /** Bytes a second this host sends image chunks to peers at most (`--image-upload-rate`); none: no cap. */
  imageUploadRate?: number;
  /** Bytes a second this host pulls image chunks at most (`--image-download-rate`); none: no cap. */
  imageDownloadRate?: number;
  /** How long an image no template or local domain uses is kept (`--image-gc-grace`). */
  imageGcGraceMs: number;
  /** The optional controllers this host does not run (`--controllers=-NAME`). */
  disabledControllers: OptionalController[];
  /** How long an upload nobody writes to is kept (`--image-upload-timeout`). */
  imageUploadTimeoutMs: number;
  /** Labels of this host's Host object (`--label k=v`), matched by hostSelectors. */
  labels: Record<string, string>;
  /** The directories this host keeps the cluster equal to (`--watch [NAME=]DIR`, GitOps). */
  watch: { name: string; dir: string }[];
  /** How often a watched directory is synced even when it did not change (drift repair). */
  watchIntervalMs: number;
  hostTimeoutMs: number;
  /** Lifetime of this host's DHT status records (--dht-record-ttl). */
  dhtRecordTtlMs: number;
  /** `--heartbeat-interval` was given: it means nothing any more (warned about at start). */
  heartbeatIntervalIgnored: boolean;
  maxInstances?: number;
  /** Hypervisor driver: auto (default), process, qemu or xen. */
  driver: DriverChoice;
  /** Process-driver domains run unsandboxed (`--unsafe-no-sandbox`): warned about at every start. */
  unsafeNoSandbox: boolean;
  /** Uids of sandboxed domains when xenosd is root (`--domain-uids`). */
  domainUids: UidRange;
  /** Host paths every domain may read (`--domain-ro-path`). */
  domainReadOnlyPaths: string[];
  /** How long an Event lives after its last write (`--event-ttl`). */
  eventTtlMs: number;
  /** `--log-level`, else XENOS_LOG_LEVEL, else info. */
  logLevel: LogLevel;
  /** How this host measures its health (`--health-command`, `--health-interval`, `--min-free-*`). */
  health: Omit<HostHealthInit, 'dataDir'>;
  /** `--auto-drain`: drain once a degraded condition has held this long (`--auto-drain-after`). */
  autoDrainAfterMs?: number;
}

export const DEFAULT_HOST_TIMEOUT = '15s';
/** kube-apiserver's --event-ttl default (DEFAULT_EVENT_TTL_MS in src/api/input-limits.ts). */
export const DEFAULT_EVENT_TTL = '1h';

/** Parse argv (without node and script). Throws UsageError; `--help` prints and returns undefined. */
export function parseOptions(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(s),
): DaemonOptions | undefined {
  const program = new Command('xenosd')
    .description(
      'The Xenos coordinator: one per host. Serves the Kubernetes-shaped API and keeps the desired state.',
    )
    .option('--data-dir <dir>', 'where state.db, admin.token and api.addr live', DEFAULT_DATA_DIR)
    .option(
      '--api <host:port>',
      'address of the HTTP API (port 0: any free port, see DATA_DIR/api.addr)',
      DEFAULT_API,
    )
    .option('--host-name <name>', "this host's name in the cluster", hostname())
    .option('--crd-dir <dir>', 'CustomResourceDefinitions to serve (default: the crds/ of this install)')
    .option('--tls-cert <file>', 'PEM certificate: serve HTTPS (needs --tls-key)')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option(
      '--tls-self-signed',
      'serve HTTPS with a self-signed certificate kept in DATA_DIR (kubectl needs TLS to send tokens)',
    )
    .option(
      '--insecure-http',
      'allow a plain-HTTP API on an address beyond loopback (tokens cross the network in clear; warns at start)',
    )
    .addOption(
      new Option('--driver <name>', 'hypervisor driver (auto: xen, qemu with KVM, else process)')
        .choices([...DRIVER_CHOICES])
        .default('auto'),
    )
    .option(
      '--cluster-key <file>',
      "the cluster's pre-shared key (created when missing; copy it to every host that joins)",
    )
    .option('--p2p <host:port>', 'join the p2p overlay, listening here (port 0: any; see DATA_DIR/p2p.addrs)')
    .option('--join <multiaddr>', 'a host of the cluster to bootstrap from (repeatable)', collect, [])
    .option('--label <key=value>', "a label on this host's Host object (repeatable)", collect, [])
    .option(
      '--watch <[name=]dir>',
      'keep the cluster equal to the manifests in DIR (a git checkout or any directory; repeatable); NAME labels what it applies (default: the directory name)',
      collect,
      [],
    )
    .option(
      '--watch-interval <duration>',
      'sync each --watch directory this often even when it did not change, undoing edits by hand',
      '5s',
    )
    .option(
      '--host-timeout <duration>',
      'a dead host is NotReady on every host within this, and gets no new instances (membership probes derive from it)',
      DEFAULT_HOST_TIMEOUT,
    )
    .option(
      '--dht-record-ttl <duration>',
      "how long this host's signed status records in the DHT stay valid (republished at half of it and on every change; at most 1h)",
      '10m',
    )
    .option(
      '--heartbeat-interval <duration>',
      'deprecated, ignored: hosts no longer heartbeat; liveness is probed, every period derived from --host-timeout',
    )
    .option('--max-instances <n>', 'instances this host accepts (allocatable.instances)')
    .option(
      '--allow-private-image-urls',
      'let template image URLs reach loopback, private, link-local and other special addresses (off: refused)',
    )
    .option(
      '--allow-image-url-address <ip>',
      'one private or loopback address image URLs may lead to, e.g. an internal image server (repeatable)',
      collect,
      [],
    )
    .option(
      '--domain-uids <first-last>',
      'uids for sandboxed process-driver domains when xenosd is root, one per domain, unique on the machine',
      formatUidRange(DEFAULT_UID_RANGE),
    )
    .option(
      '--domain-ro-path <path>',
      'a host path every process-driver domain may read, read-only (repeatable; e.g. a Node install outside /usr)',
      collect,
      [],
    )
    .option(
      '--max-image-size <size>',
      'largest image a URL import downloads or an upload sends, e.g. 512Mi, 16Gi',
      formatMemoryQuantity(DEFAULT_MAX_IMAGE_BYTES),
    )
    .option(
      '--image-upload-rate <size>',
      'most bytes a second this host sends image chunks to its peers, e.g. 12Mi (about 100 Mbit/s); default: no cap',
    )
    .option(
      '--image-download-rate <size>',
      'most bytes a second this host pulls image chunks from its peers, e.g. 12Mi; default: no cap',
    )
    .option(
      '--controllers <list>',
      `the optional controllers this host runs, as kube-controller-manager's flag: * (all), NAME, -NAME (not that one); names: ${OPTIONAL_CONTROLLERS.join(', ')}. A host still ranks for the objects of one it leaves out: in a cluster, leave it out on every host or on none`,
      '*',
    )
    .option(
      '--image-gc-grace <duration>',
      'remove an image no template references and no domain on this host uses after this long',
      '1h',
    )
    .option(
      '--image-upload-timeout <duration>',
      'remove an image upload nobody has written to for this long (a push resumes only within it)',
      '1h',
    )
    .option(
      '--unsafe-no-sandbox',
      "DANGEROUS: run process-driver domains without a sandbox, as xenosd's user, able to read the data dir (admin token, state, other domains)",
    )
    .option(
      '--event-ttl <duration>',
      'how long an Event is kept after its last update (use the same value on every host)',
      DEFAULT_EVENT_TTL,
    )
    .option(
      '--health-command <command>',
      'a shell command run every --health-interval: a non-zero exit (or none within 10 s) makes the Host condition HealthCheckFailing True',
    )
    .option(
      '--health-interval <duration>',
      "how often this host measures its health (free memory, the data dir's free disk, --health-command)",
      DEFAULT_HEALTH_INTERVAL,
    )
    .option(
      '--min-free-memory <size>',
      'MemoryPressure below this much available memory, e.g. 100Mi, or a share like 5%',
      DEFAULT_MIN_FREE_MEMORY,
    )
    .option(
      '--min-free-disk <size>',
      "DiskPressure below this much free space on the data dir's filesystem, e.g. 10%, or a size like 2Gi",
      DEFAULT_MIN_FREE_DISK,
    )
    .option(
      '--auto-drain',
      'drain this host (cordon it, move its instances off, live where the driver can) once MemoryPressure, DiskPressure or HealthCheckFailing has been True for --auto-drain-after',
    )
    .option(
      '--auto-drain-after <duration>',
      'how long a degraded condition must hold before --auto-drain drains the host',
      '30s',
    )
    .option(
      '--log-level <level>',
      `what xenosd logs: ${LOG_LEVELS.join(', ')} (default: XENOS_LOG_LEVEL, else ${DEFAULT_LOG_LEVEL}); JSON lines, or compact lines on a terminal`,
    )
    .option(
      '--max-heap <MiB>',
      "xenosd's V8 old-space bound, applied at start (0: V8's default; NODE_OPTIONS=--max-old-space-size wins)",
      String(DEFAULT_MAX_HEAP_MIB),
    )
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: () => {} })
    .allowExcessArguments(false);
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.help' ||
        err.code === 'commander.version'
      ) {
        return undefined;
      }
      throw new UsageError(err.message.replace(/^error: /, ''));
    }
    throw err;
  }
  const o = program.opts<{
    dataDir: string;
    api: string;
    hostName: string;
    crdDir?: string;
    tlsCert?: string;
    tlsKey?: string;
    tlsSelfSigned?: boolean;
    clusterKey?: string;
    p2p?: string;
    join: string[];
    label: string[];
    watch: string[];
    watchInterval: string;
    hostTimeout: string;
    dhtRecordTtl: string;
    heartbeatInterval?: string;
    maxInstances?: string;
    maxHeap?: string;
    driver: DriverChoice;
    insecureHttp?: boolean;
    allowPrivateImageUrls?: boolean;
    allowImageUrlAddress: string[];
    maxImageSize: string;
    imageUploadRate?: string;
    imageDownloadRate?: string;
    imageGcGrace: string;
    controllers: string;
    imageUploadTimeout: string;
    domainUids: string;
    domainRoPath: string[];
    unsafeNoSandbox?: boolean;
    eventTtl: string;
    logLevel?: string;
    healthCommand?: string;
    healthInterval: string;
    minFreeMemory: string;
    minFreeDisk: string;
    autoDrain?: boolean;
    autoDrainAfter: string;
  }>();
  let api: { host: string; port: number };
  try {
    api = parseHostPort(o.api);
  } catch (err) {
    throw new UsageError(
      `option '--api <host:port>' argument '${o.api}' is invalid. ${(err as Error).message}`,
    );
  }
  if (Boolean(o.tlsCert) !== Boolean(o.tlsKey))
    throw new UsageError('--tls-cert and --tls-key go together: give both or neither');
  if (o.tlsSelfSigned && o.tlsCert)
    throw new UsageError('--tls-self-signed and --tls-cert exclude each other: pick one');
  const tls = Boolean(o.tlsSelfSigned || o.tlsCert);
  if (!tls && !o.insecureHttp && !isLoopbackHost(api.host))
    throw new UsageError(
      `--api ${o.api} is beyond loopback and the API would be plain HTTP, sending tokens in clear: add --tls-self-signed or --tls-cert/--tls-key, or --insecure-http if a trusted network or proxy protects it`,
    );
  for (const a of o.allowImageUrlAddress)
    if (!isIP(a)) throw new UsageError(`--allow-image-url-address "${a}": expected an IP address`);
  const maxImageBytes = parseMemoryQuantity(o.maxImageSize);
  if (!maxImageBytes)
    throw new UsageError(
      `--max-image-size "${o.maxImageSize}": expected a size above zero like 512Mi, 16Gi or a number of bytes`,
    );
  const rate = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const bytes = parseMemoryQuantity(value);
    if (!bytes)
      throw new UsageError(`${flag} "${value}": expected bytes a second above zero like 12Mi or 500Ki`);
    return bytes;
  };
  const imageUploadRate = rate('--image-upload-rate', o.imageUploadRate);
  const imageDownloadRate = rate('--image-download-rate', o.imageDownloadRate);
  if (!o.hostName.trim()) throw new UsageError('--host-name must not be empty');
  if (o.join.length > 0 && !o.p2p)
    throw new UsageError('--join needs --p2p HOST:PORT (where this host listens)');
  if (o.p2p && !o.clusterKey)
    throw new UsageError('--p2p needs --cluster-key FILE (created when missing; copy it to the other hosts)');
  for (const j of o.join) {
    if (!j.startsWith('/') || !j.includes('/p2p/'))
      throw new UsageError(
        `--join "${j}": expected a multiaddr with a peer id, e.g. /ip4/10.0.0.1/tcp/4001/p2p/12D3KooW... (see DATA_DIR/p2p.addrs of that host)`,
      );
  }
  const labels: Record<string, string> = {};
  for (const l of o.label) {
    const m = /^([a-z0-9A-Z]([-a-zA-Z0-9_./]*[a-zA-Z0-9])?)=([-a-zA-Z0-9_.]*)$/.exec(l);
    if (!m) throw new UsageError(`--label "${l}": expected KEY=VALUE with a Kubernetes label key and value`);
    labels[m[1]] = m[3];
  }
  const duration = (flag: string, v: string) => {
    try {
      const ms = parseDuration(v);
      if (ms <= 0) throw new InvalidArgumentError('it must be above zero');
      return ms;
    } catch (err) {
      throw new UsageError(`${flag} "${v}": ${(err as Error).message}`);
    }
  };
  const hostTimeoutMs = duration('--host-timeout', o.hostTimeout);
  const watch = watchedDirs(o.watch);
  const dhtRecordTtlMs = duration('--dht-record-ttl', o.dhtRecordTtl);
  if (dhtRecordTtlMs > 60 * 60_000)
    throw new UsageError(
      `--dht-record-ttl "${o.dhtRecordTtl}": at most 1h (peers refuse records valid longer)`,
    );
  let domainUids: UidRange;
  try {
    domainUids = parseUidRange(o.domainUids);
  } catch (err) {
    throw new UsageError(`--domain-uids: ${(err as Error).message}`);
  }
  for (const p of o.domainRoPath) {
    if (!p.startsWith('/') || p.split('/').includes('..'))
      throw new UsageError(`--domain-ro-path "${p}": expected an absolute path without ..`);
  }
  // Applied before the daemon loads (heap-bound.ts); checked here so a bad value gets the usual error.
  if (o.maxHeap !== undefined && !/^\d+$/.test(o.maxHeap))
    throw new UsageError(`--max-heap "${o.maxHeap}": expected a whole number of MiB (0: V8's default)`);
  const freeBound = (flag: string, v: string): FreeBound => {
    const pct = /^(\d+(?:\.\d+)?)%$/.exec(v);
    if (pct && Number(pct[1]) <= 100) return { percent: Number(pct[1]) };
    const bytes = parseMemoryQuantity(v);
    if (bytes === undefined || pct)
      throw new UsageError(`${flag} "${v}": expected a size like 100Mi or 2Gi, or a share like 10%`);
    return { bytes };
  };
  if (o.healthCommand !== undefined && !o.healthCommand.trim())
    throw new UsageError('--health-command must not be empty');
  const maxInstances = o.maxInstances === undefined ? undefined : Number(o.maxInstances);
  if (maxInstances !== undefined && !(Number.isInteger(maxInstances) && maxInstances >= 0))
    throw new UsageError(`--max-instances "${o.maxInstances}": expected a whole number`);
  return {
    p2p: o.p2p ? { listen: o.p2p, clusterKeyFile: resolve(o.clusterKey!), join: o.join } : undefined,
    labels,
    watch,
    watchIntervalMs: duration('--watch-interval', o.watchInterval),
    hostTimeoutMs,
    dhtRecordTtlMs,
    heartbeatIntervalIgnored: o.heartbeatInterval !== undefined,
    maxInstances,
    driver: o.driver,
    unsafeNoSandbox: o.unsafeNoSandbox === true,
    domainUids,
    domainReadOnlyPaths: o.domainRoPath,
    eventTtlMs: duration('--event-ttl', o.eventTtl),
    logLevel: logLevel(o.logLevel),
    dataDir: resolve(o.dataDir),
    apiHost: api.host,
    apiPort: api.port,
    hostName: o.hostName,
    crdDir: o.crdDir ? resolve(o.crdDir) : undefined,
    tlsCert: o.tlsCert ? resolve(o.tlsCert) : undefined,
    tlsKey: o.tlsKey ? resolve(o.tlsKey) : undefined,
    tlsSelfSigned: o.tlsSelfSigned === true,
    insecureHttp: !tls && !isLoopbackHost(api.host),
    allowPrivateImageUrls: o.allowPrivateImageUrls === true,
    allowedImageAddresses: o.allowImageUrlAddress,
    maxImageBytes,
    imageUploadRate,
    imageDownloadRate,
    imageGcGraceMs: duration('--image-gc-grace', o.imageGcGrace),
    disabledControllers: disabledControllers(o.controllers),
    imageUploadTimeoutMs: duration('--image-upload-timeout', o.imageUploadTimeout),
    health: {
      command: o.healthCommand,
      intervalMs: duration('--health-interval', o.healthInterval),
      minFreeMemory: freeBound('--min-free-memory', o.minFreeMemory),
      minFreeDisk: freeBound('--min-free-disk', o.minFreeDisk),
    },
    autoDrainAfterMs: o.autoDrain ? duration('--auto-drain-after', o.autoDrainAfter) : undefined,
  };
}

/** Controllers a host may leave to others: each object of their kinds is worked on by one live host. */
