// xenosd's command line: `xenosd --data-dir DIR --api HOST:PORT --host-name NAME`. Parsed with
// commander; a bad option is reported as one line (no stack trace) and exit code 2.

import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DRIVER_CHOICES, type DriverChoice } from '../drivers/registry.ts';

export const DEFAULT_DATA_DIR = './.xenos';
/** Loopback only by default: the API is plain HTTP unless --tls-cert/--tls-key are given. */
export const DEFAULT_API = '127.0.0.1:7443';

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
  /** The p2p overlay: listen address (`--p2p`), cluster key file, bootstrap multiaddrs (`--join`). */
  p2p?: { listen: string; clusterKeyFile: string; join: string[]; denyFile?: string };
  /** Labels of this host's Host object (`--label k=v`), matched by hostSelectors. */
  labels: Record<string, string>;
  hostTimeoutMs: number;
  heartbeatIntervalMs?: number;
  maxInstances?: number;
  /** Hypervisor driver: auto (default), process, qemu or xen. */
  driver: DriverChoice;
  /** How long an Event lives after its last write (`--event-ttl`). */
  eventTtlMs: number;
}

export const DEFAULT_HOST_TIMEOUT = '15s';
/** kube-apiserver's --event-ttl default (DEFAULT_EVENT_TTL_MS in src/api/input-limits.ts). */
export const DEFAULT_EVENT_TTL = '1h';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `15s`, `500ms`, `2m`, `1h` or a bare number of seconds → milliseconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a duration like 15s, 500ms, 2m or 1h, got "${value}"`);
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 's']);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A mistake in the command line, for one-line reporting. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseHostPort(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value);
  if (!m) throw new InvalidArgumentError(`expected HOST:PORT (e.g. ${DEFAULT_API}), got "${value}"`);
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (port > 65535) throw new InvalidArgumentError(`port ${port} is out of range (0-65535)`);
  return { host: host || '127.0.0.1', port };
}

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
      '--host-timeout <duration>',
      'a host silent this long is NotReady and gets no new instances',
      DEFAULT_HOST_TIMEOUT,
    )
    .option(
      '--heartbeat-interval <duration>',
      'how often this host heartbeats (default: timeout / 5, at most 3s)',
    )
    .option(
      '--p2p-deny-file <file>',
      'FAULT INJECTION for tests: refuse p2p connections to the hosts whose multiaddrs FILE lists (a partition)',
    )
    .option('--max-instances <n>', 'instances this host accepts (allocatable.instances)')
    .option(
      '--event-ttl <duration>',
      'how long an Event is kept after its last update (use the same value on every host)',
      DEFAULT_EVENT_TTL,
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
    hostTimeout: string;
    heartbeatInterval?: string;
    maxInstances?: string;
    driver: DriverChoice;
    p2pDenyFile?: string;
    eventTtl: string;
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
  const maxInstances = o.maxInstances === undefined ? undefined : Number(o.maxInstances);
  if (maxInstances !== undefined && !(Number.isInteger(maxInstances) && maxInstances >= 0))
    throw new UsageError(`--max-instances "${o.maxInstances}": expected a whole number`);
  return {
    p2p: o.p2p
      ? {
          listen: o.p2p,
          clusterKeyFile: resolve(o.clusterKey!),
          join: o.join,
          ...(o.p2pDenyFile ? { denyFile: resolve(o.p2pDenyFile) } : {}),
        }
      : undefined,
    labels,
    hostTimeoutMs,
    heartbeatIntervalMs: o.heartbeatInterval
      ? duration('--heartbeat-interval', o.heartbeatInterval)
      : Math.min(3000, Math.max(100, Math.round(hostTimeoutMs / 5))),
    maxInstances,
    driver: o.driver,
    eventTtlMs: duration('--event-ttl', o.eventTtl),
    dataDir: resolve(o.dataDir),
    apiHost: api.host,
    apiPort: api.port,
    hostName: o.hostName,
    crdDir: o.crdDir ? resolve(o.crdDir) : undefined,
    tlsCert: o.tlsCert ? resolve(o.tlsCert) : undefined,
    tlsKey: o.tlsKey ? resolve(o.tlsKey) : undefined,
    tlsSelfSigned: o.tlsSelfSigned === true,
  };
}
