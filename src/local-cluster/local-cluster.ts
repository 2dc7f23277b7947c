// A whole cluster on this machine in one command (`npm start`): N xenosd processes under one directory
// (default ./.xenos/cluster/host-1..N) with a fresh cluster key, the first listening for p2p on loopback and
// the others joining it; then the example service is applied, and once its instances are Ready the
// launcher prints where they answer and how to point xenosctl and kubectl at the cluster. Ctrl-C (SIGINT)
// or SIGTERM stops everything: the instances are deleted first (process-driver domains are built to
// outlive xenosd, so only a delete stops them), then every xenosd gets SIGTERM (SIGKILL after a grace).
// The xenosd children run in their own process group, so the terminal's Ctrl-C reaches only the
// launcher, which then stops them in that order.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { XenosClient } from '../client/client.ts';
import { DataDirLock } from '../daemon/data-dir-lock.ts';
import { DataDirLockedError } from '../daemon/errors.ts';
import { ADMIN_TOKEN_FILE, API_ADDR_FILE } from '../model/data-dir.ts';
import { HOST, SERVICE_INSTANCE } from '../model/kinds.ts';
import { packageFile } from '../model/package-root.ts';
import type { ServiceInstance } from '../model/service-instance.ts';
import { LocalClusterError } from './errors.ts';

const XENOSD = packageFile('bin', 'xenosd.js');
const XENOSCTL = packageFile('bin', 'xenosctl.js');
const NODE_FLAGS = ['--disable-warning=ExperimentalWarning'];

export interface LocalClusterInit {
  /** Where the hosts' data dirs, the cluster key and the kubeconfig go. */
  dir: string;
  hosts: number;
  hostTimeout?: string;
  /** Serve HTTPS with self-signed certificates (kubectl sends tokens only over TLS). Default true. */
  tls?: boolean;
  log?: (msg: string) => void;
  /** How long one xenosd may take to serve its API and p2p. Default 30 s (a loaded machine starting
   *  30 hosts needs more). */
  startTimeoutMs?: number;
}

export interface LocalHost {
  name: string;
  dataDir: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  apiUrl: string;
  token: string;
  p2pAddrs: string[];
  /** An API client for this host (trusting its self-signed certificate). */
  client: XenosClient;
}

/** Polls `cond` until truthy, or throws LocalClusterError naming `what` after `timeoutMs`. */
async function until<T>(cond: () => T | Promise<T>, what: string, timeoutMs: number, signal?: AbortSignal) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline)
      throw new LocalClusterError(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function readTrimmed(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export class LocalCluster {
  readonly init: LocalClusterInit;
  readonly hosts: LocalHost[] = [];
  readonly keyFile: string;
  readonly #log: (msg: string) => void;

  constructor(init: LocalClusterInit) {
    this.init = { ...init, dir: resolve(init.dir) };
    this.keyFile = join(this.init.dir, 'swarm.key');
    this.#log = init.log ?? ((msg) => process.stderr.write(`${msg}\n`));
  }

  /** Fresh directory and key; starts every host and waits until each sees all of them Ready. */
  async start(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { dir, hosts } = this.init;
    if (!Number.isInteger(hosts) || hosts < 1)
      throw new LocalClusterError(`--hosts ${hosts}: give a whole number >= 1`);
    this.refuseIfRunning(dir);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const seed = await this.addHost('host-1', options);
    const rest = await Promise.all(
      Array.from({ length: hosts - 1 }, (_, i) => this.addHost(`host-${i + 2}`, options)),
    );
    await this.waitHostsReady([seed, ...rest], options);
  }

  /** A cluster left running in `dir` (its launcher killed with SIGKILL) would lose its data dirs under
   *  it and keep its processes and domains: refuse, naming a host that still holds its data dir lock. */
  private refuseIfRunning(dir: string): void {
    const names = existsSync(dir) ? readdirSync(dir).filter((n) => /^host-\d+$/.test(n)) : [];
    for (const name of names) {
      try {
        DataDirLock.acquire(join(dir, name)).release();
      } catch (err) {
        if (!(err instanceof DataDirLockedError)) throw err;
        throw new LocalClusterError(
          `${name} of a cluster in ${dir} still runs${err.holderPid ? ` (xenosd pid ${err.holderPid})` : ''}; ` +
            'stop that cluster first (npm start replaces the directory) or pick another --dir',
        );
      }
    }
  }

  /** Waits until each of `all` sees every one of them Ready. */
  async waitHostsReady(
    all: LocalHost[],
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<void> {
    const names = all.map((h) => h.name);
    await until(
      async () => {
        for (const h of all) {
          const list = await h.client.list(HOST, { timeoutMs: 5000 }).catch(() => undefined);
          const ready = new Set(
            (list?.items ?? [])
              .filter((x) => x.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
              .map((x) => x.metadata.name),
          );
          if (!names.every((n) => ready.has(n))) return false;
        }
        return true;
      },
      `all ${all.length} hosts to see each other Ready`,
      options.timeoutMs ?? 120_000,
      options.signal,
    );
  }

  /** Starts one more host (joining the first one started, if any); resolves once it serves its API. */
  async addHost(name: string, options: { signal?: AbortSignal } = {}): Promise<LocalHost> {
    const { signal } = options;
    const join_ = this.hosts[0]?.p2pAddrs ?? [];
    const dataDir = join(this.init.dir, name);
    const args = [
      ...NODE_FLAGS,
      XENOSD,
      '--data-dir',
      dataDir,
      '--host-name',
      name,
      '--api',
      '127.0.0.1:0',
      '--p2p',
      '127.0.0.1:0',
      '--cluster-key',
      this.keyFile,
      '--host-timeout',
      this.init.hostTimeout ?? '5s',
      ...(this.init.tls === false ? [] : ['--tls-self-signed']),
      // Everything of a local cluster is on this machine: a template may import its image from a server
      // on loopback (a real host refuses such URLs unless told so).
      '--allow-private-image-urls',
      ...join_.flatMap((a) => ['--join', a]),
    ];
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // A host started again on its data dir after a crash: the addresses its last run wrote are stale, and
    // the new run's must not be taken for them.
    for (const f of [API_ADDR_FILE, 'p2p.addrs']) rmSync(join(dataDir, f), { force: true });
    const logFile = join(this.init.dir, `${name}.log`);
    writeFileSync(logFile, '');
    const fd = openSync(logFile, 'a');
    // Own process group: Ctrl-C in the terminal reaches the launcher only, which stops hosts in order.
    const child = spawn(process.execPath, args, { stdio: ['ignore', fd, fd], detached: true });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let gone = false;
    exited.then(() => {
      gone = true;
    });
    let apiUrl: string;
    let p2pAddrs: string[];
    try {
      apiUrl = await until(
        () => {
          if (gone) throw new LocalClusterError(`xenosd ${name} exited while starting; see ${logFile}`);
          return readTrimmed(join(dataDir, API_ADDR_FILE));
        },
        `xenosd ${name} to serve its API (log: ${logFile})`,
        this.init.startTimeoutMs ?? 30_000,
        signal,
      );
      p2pAddrs = (
        await until(
          () => readTrimmed(join(dataDir, 'p2p.addrs')),
          `xenosd ${name} p2p`,
          this.init.startTimeoutMs ?? 30_000,
          signal,
        )
      ).split('\n');
    } catch (err) {
      // Not in this.hosts yet, so stop() would not reach it: never leave it running on its own.
      if (!gone) child.kill('SIGTERM');
      throw err;
    }
    const token = readTrimmed(join(dataDir, ADMIN_TOKEN_FILE));
    if (!token) throw new LocalClusterError(`xenosd ${name} wrote no admin token in ${dataDir}`);
    const cert = join(dataDir, 'tls.crt');
    const client = new XenosClient({
      server: apiUrl,
      token,
      ca: apiUrl.startsWith('https:') ? readFileSync(cert) : undefined,
      timeoutMs: 10_000,
    });
    const host: LocalHost = { name, dataDir, child, exited, apiUrl, token, p2pAddrs, client };
    // Last resort if this process ends without stop() (an uncaught error, process.exit elsewhere):
    // never leave a detached xenosd behind (its domains, if any, are then adopted by a later start).
    process.once('exit', () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    });
    this.hosts.push(host);
    this.#log(`started ${name}: API ${apiUrl}, p2p ${p2pAddrs[0]}`);
    return host;
  }

  /** Runs xenosctl against `host` (default the first); rejects with its stderr on failure. */
  ctl(args: string[], host: LocalHost = this.hosts[0]): Promise<string> {
    return new Promise((resolve_, reject) => {
      const child = spawn(process.execPath, [...NODE_FLAGS, XENOSCTL, ...args], {
        env: { ...process.env, XENOS_DATA_DIR: host.dataDir, XENOS_SERVER: '', XENOS_TOKEN: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        err += d;
      });
      child.once('exit', (code) =>
        code === 0
          ? resolve_(out)
          : reject(new LocalClusterError(`xenosctl ${args.join(' ')}: ${err.trim() || `exit ${code}`}`)),
      );
    });
  }

  /** Every ServiceInstance (all namespaces), as `host` (default the first) stores it. */
  async instances(host: LocalHost = this.hosts[0]): Promise<ServiceInstance[]> {
    return (await host.client.list(SERVICE_INSTANCE)).items;
  }

  /** Waits until every instance is Ready; returns them. */
  async waitReady(timeoutMs: number, signal?: AbortSignal): Promise<ServiceInstance[]> {
    return until(
      async () => {
        const items = await this.instances();
        return items.length > 0 && items.every(isReady) ? items : undefined;
      },
      'the example service to be Ready',
      timeoutMs,
      signal,
    );
  }

  /** Deletes every instance and waits until no host lists one (their domains stop), then stops all hosts. */
  async stop(): Promise<void> {
    const running = this.hosts.filter((h) => h.child.exitCode === null && h.child.signalCode === null);
    if (running.length > 0) {
      try {
        for (const i of await this.instances()) {
          await this.ctl([
            'delete',
            'serviceinstance',
            i.metadata.name,
            '-n',
            i.metadata.namespace ?? 'default',
            '--wait=false',
            '--ignore-not-found',
          ]).catch((err) => this.#log(`deleting ${i.metadata.name}: ${err.message}`));
        }
        await until(
          async () => (await this.instances()).length === 0,
          'every instance to be deleted',
          60_000,
        );
      } catch (err) {
        this.#log(
          `could not delete every instance (${(err as Error).message}); their domains may keep running`,
        );
      }
    }
    await Promise.all(
      this.hosts.map(async (h) => {
        if (h.child.exitCode !== null || h.child.signalCode !== null) return;
        h.child.kill('SIGTERM');
        const timer = setTimeout(() => h.child.kill('SIGKILL'), 10_000);
        await h.exited;
        clearTimeout(timer);
        h.client.close();
      }),
    );
    this.hosts.length = 0;
  }

  /** What to tell a person: the endpoints, and env lines for xenosctl and kubectl. */
  async summary(instances: ServiceInstance[]): Promise<string> {
    const kubeconfig = join(this.init.dir, 'kubeconfig');
    writeFileSync(kubeconfig, await this.ctl(['kubeconfig']), { mode: 0o600 });
    const lines = [''];
    for (const i of instances) {
      for (const e of i.status?.endpoints ?? []) {
        lines.push(`  ${i.metadata.name} (on ${i.status?.host}): ${e.url ?? `${e.address}:${e.port}`}`);
      }
    }
    const first = this.hosts[0];
    lines.push(
      '',
      `${this.hosts.length} hosts are up (logs in ${this.init.dir}/host-*.log). Any host answers; for the first:`,
      `  export XENOS_DATA_DIR=${first.dataDir}`,
      '  npx xenosctl get hosts; npx xenosctl get serviceinstances -o wide; npx xenosctl discover web.http',
      `  export KUBECONFIG=${kubeconfig}`,
      '  kubectl get serviceinstances',
      '',
      'Press Ctrl-C to stop everything (instances are deleted, then every xenosd stops).',
    );
    return `${lines.join('\n')}\n`;
  }
}

function isReady(i: ServiceInstance): boolean {
  return i.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Whether `dir` looks like a previous local cluster (so the launcher may say it replaces it). */
export function hasCluster(dir: string): boolean {
  return existsSync(join(resolve(dir), 'swarm.key'));
}
