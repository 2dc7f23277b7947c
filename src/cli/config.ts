// Where xenosctl finds xenosd and its token. Each setting is taken from the first of: the flag
// (--server, --token, -n), the environment (XENOS_SERVER, XENOS_TOKEN, XENOS_NAMESPACE), the
// config file (--config, XENOS_CONFIG, or ~/.config/xenos/config.yaml), and last the local host's
// defaults: the data dir ./.xenos (XENOS_DATA_DIR) that xenosd uses by default, whose api.addr and
// admin.token say where the local xenosd listens and how to get in, else http://127.0.0.1:7443.
//
// The config file is YAML:
//   server: http://10.0.0.5:7443      # the API of any host of the cluster
//   token: 3f9c...                     # or tokenFile: /path/to/admin.token
//   namespace: default                 # the default for -n
//   certificateAuthority: /path/ca.crt # for an https server with its own CA (or self-signed)

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { dump, load } from 'js-yaml';
import { ADMIN_TOKEN_FILE, API_ADDR_FILE, DEFAULT_DATA_DIR } from '../model/data-dir.ts';
import { CliError } from './errors.ts';

export const DEFAULT_SERVER = 'http://127.0.0.1:7443';

export interface ConfigFile {
  server?: string;
  token?: string;
  tokenFile?: string;
  namespace?: string;
  certificateAuthority?: string;
}

const FIELDS = ['server', 'token', 'tokenFile', 'namespace', 'certificateAuthority'];

export interface GlobalFlags {
  server?: string;
  token?: string;
  namespace?: string;
  config?: string;
  certificateAuthority?: string;
}

export type SettingSource = 'flag' | 'env' | 'config' | 'data-dir' | 'default';

export interface Settings {
  server: string;
  token?: string;
  namespace: string;
  /** A CA file to trust (https servers). */
  caFile?: string;
  configPath: string;
  sources: { server: SettingSource; token?: SettingSource };
}

export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return resolve(flag);
  if (env.XENOS_CONFIG) return resolve(env.XENOS_CONFIG);
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'xenos', 'config.yaml');
}

/** Reads the config file; undefined if it does not exist. A malformed file is an error. */
export function readConfigFile(path: string): ConfigFile | undefined {
  if (!existsSync(path)) return undefined;
  let doc: unknown;
  try {
    doc = load(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CliError(`config file ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === undefined || doc === null) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new CliError(`config file ${path} must be a YAML mapping with ${FIELDS.join(', ')}`);
  }
  const cfg = doc as Record<string, unknown>;
  for (const key of Object.keys(cfg)) {
    if (!FIELDS.includes(key)) {
      throw new CliError(`config file ${path}: unknown field "${key}" (expected ${FIELDS.join(', ')})`);
    }
    if (typeof cfg[key] !== 'string') throw new CliError(`config file ${path}: ${key} must be a string`);
  }
  return cfg as ConfigFile;
}

export function writeConfigFile(path: string, cfg: ConfigFile): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, dump(cfg), { mode: 0o600 });
}

/** Turns what api.addr holds (`127.0.0.1:7443` or a URL) into a base URL. */
export function serverFromAddr(addr: string): string {
  const a = addr.trim();
  if (/^https?:\/\//.test(a)) return a.replace(/\/+$/, '');
  return `http://${a}`;
}

function readTrimmed(path: string): string | undefined {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return text || undefined;
  } catch {
    return undefined;
  }
}

export function resolveSettings(
  flags: GlobalFlags,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): Settings {
  const path = configPath(flags.config, env);
  if (flags.config && !existsSync(path))
    throw new CliError(`config file ${path} (from --config) does not exist`);
  const file = readConfigFile(path) ?? {};
  const dataDir = resolve(cwd, env.XENOS_DATA_DIR || DEFAULT_DATA_DIR);

  let server: string;
  let serverSource: SettingSource;
  if (flags.server) [server, serverSource] = [flags.server, 'flag'];
  else if (env.XENOS_SERVER) [server, serverSource] = [env.XENOS_SERVER, 'env'];
  else if (file.server) [server, serverSource] = [file.server, 'config'];
  else {
    const addr = readTrimmed(join(dataDir, API_ADDR_FILE));
    [server, serverSource] = addr ? [serverFromAddr(addr), 'data-dir'] : [DEFAULT_SERVER, 'default'];
  }
  server = serverFromAddr(server);
  try {
    new URL(server);
  } catch {
    throw new CliError(`server "${server}" is not a URL (expected e.g. ${DEFAULT_SERVER})`, { exitCode: 2 });
  }

  let token: string | undefined;
  let tokenSource: SettingSource | undefined;
  if (flags.token) [token, tokenSource] = [flags.token, 'flag'];
  else if (env.XENOS_TOKEN) [token, tokenSource] = [env.XENOS_TOKEN, 'env'];
  else if (file.token) [token, tokenSource] = [file.token, 'config'];
  else if (file.tokenFile) {
    token = readTrimmed(resolve(dirname(path), file.tokenFile));
    if (token === undefined)
      throw new CliError(`config file ${path}: tokenFile ${file.tokenFile} cannot be read`);
    tokenSource = 'config';
  } else {
    token = readTrimmed(join(dataDir, ADMIN_TOKEN_FILE));
    if (token) tokenSource = 'data-dir';
  }

  const namespace = flags.namespace || env.XENOS_NAMESPACE || file.namespace || 'default';
  let caFile = flags.certificateAuthority || env.XENOS_CA || undefined;
  if (!caFile && file.certificateAuthority) caFile = resolve(dirname(path), file.certificateAuthority);
  // xenosd --tls-self-signed keeps its certificate in the data dir: trust it for the local host.
  const localCert = join(dataDir, 'tls.crt');
  if (!caFile && serverSource === 'data-dir' && server.startsWith('https:') && existsSync(localCert)) {
    caFile = localCert;
  }
  return {
    server,
    token,
    namespace,
    caFile,
    configPath: path,
    sources: { server: serverSource, token: tokenSource },
  };
}
