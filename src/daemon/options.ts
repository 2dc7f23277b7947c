// xenosd's command line: `xenosd --data-dir DIR --api HOST:PORT --host-name NAME`. Parsed with
// commander; a bad option is reported as one line (no stack trace) and exit code 2.

import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';

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
  return {
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
