// Test helper: a small network of Linux network namespaces (needs root and iproute2), and real xenosd
// processes inside it. A "switch" namespace holds a bridge; each host namespace is wired to it by a veth
// pair (eth0 in the host, p<i> on the bridge), so the root namespace is never touched: no interface,
// address or route is added there. Cutting p<i> on the switch is a real partition of host i.
//
// Names are unique per run (`xn-<pid>-sw`, `xn-<pid>-<i>`) and destroy() removes everything: it kills
// whatever still runs inside the namespaces (only what this run started: xenosd, relays, domains) and
// deletes them, which also deletes their veths and the bridge. Namespaces of earlier runs whose process is
// gone (a killed test runner) are deleted too.
//
// The test process stays in the root namespace and reaches a host's API, listening on 127.0.0.1 inside
// the host's namespace, through a relay: a TCP listener on 127.0.0.1:0 here → a Unix socket (filesystem
// sockets cross network namespaces) → a forwarder inside the namespace → the API. So `XenosdProcess.api`
// and xenosctl work unchanged with the relay's URL.
//
// It does not need vitest (bench/distribution builds its network with it), so it waits with its own
// waitFor below, not test/wait.ts.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitUntil } from '../../src/drivers/wait-until.ts';
import { apiFetch, runXenosd, stopXenosd, type XenosdProcess } from '../daemon/xenosd-process.ts';
import type { ClusterHost } from './harness.ts';

const run = promisify(execFile);
const CMD_TIMEOUT_MS = 10_000;
const NAME_RE = /^xn-(\d+)-/;

/** Why namespace tests cannot run here, or undefined when they can (root and iproute2 with netns). */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns add)';
  try {
    accessSync('/proc/self/ns/net');
  } catch {
    return 'no /proc/self/ns/net: this kernel has no network namespaces';
  }
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  const found = dirs.some((dir) => {
    try {
      accessSync(join(dir, 'ip'), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  return found ? undefined : 'iproute2 `ip` is not on PATH';
}

/** Runs `ip ARGS` and returns its stdout; throws with the command and its stderr. */
export async function ip(args: string[], opts: { signal?: AbortSignal } = {}): Promise<string> {
  try {
    const { stdout } = await run('ip', args, { timeout: CMD_TIMEOUT_MS, signal: opts.signal });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

export interface NetnsHost {
  /** The namespace's name, for `ip netns exec`. */
  ns: string;
  /** Its address on the switch (eth0). */
  address: string;
  /** Its port on the switch's bridge, in the switch namespace. */
  switchPort: string;
}

/** A switch namespace with a bridge and `n` host namespaces on 10.77.0.0/24 (addresses are per namespace,
 *  so concurrent runs never clash; only the names must be unique). */
export class NetnsLab {
  readonly prefix: string;
  readonly switchNs: string;
  readonly hosts: NetnsHost[] = [];
  readonly #created: string[] = [];

  constructor(init: { prefix?: string } = {}) {
    this.prefix = init.prefix ?? `xn-${process.pid}`;
    this.switchNs = `${this.prefix}-sw`;
  }

  /** Creates the switch and `n` hosts (host i, from 1, at 10.77.0.i). On failure, destroy() still cleans up. */
  async create(n: number, opts: { signal?: AbortSignal } = {}): Promise<NetnsHost[]> {
    await removeOrphans();
    await this.#addNs(this.switchNs, opts);
    const sw = ['-n', this.switchNs];
    await ip([...sw, 'link', 'add', 'br0', 'type', 'bridge'], opts);
    await ip([...sw, 'link', 'set', 'br0', 'up'], opts);
    for (let i = 1; i <= n; i++) {
      const host: NetnsHost = { ns: `${this.prefix}-${i}`, address: `10.77.0.${i}`, switchPort: `p${i}` };
      await this.#addNs(host.ns, opts);
      const h = ['-n', host.ns];
      await ip(
        [...sw, 'link', 'add', host.switchPort, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.ns],
        opts,
      );
      await ip([...sw, 'link', 'set', host.switchPort, 'master', 'br0'], opts);
      await ip([...sw, 'link', 'set', host.switchPort, 'up'], opts);
      await ip([...h, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0'], opts);
      await ip([...h, 'link', 'set', 'eth0', 'up'], opts);
      await ip([...h, 'link', 'set', 'lo', 'up'], opts);
      this.hosts.push(host);
    }
    return this.hosts;
  }

  /** Cuts host `h` off the switch (its bridge port down: every frame to and from it is lost), or reconnects it. */
  async setLink(h: NetnsHost, up: boolean, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await ip(['-n', this.switchNs, 'link', 'set', h.switchPort, up ? 'up' : 'down'], opts);
  }

  /** Spawns `command args` inside namespace `ns` (`ip netns exec` execs it: the child's pid is the command's). */
  spawn(ns: string, command: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', ns, command, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
  }

  /** Runs `command args` inside `ns` to its end and returns its stdout; throws with its stderr. */
  async exec(
    ns: string,
    command: string,
    args: string[],
    opts: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<string> {
    try {
      const { stdout } = await run('ip', ['netns', 'exec', ns, command, ...args], {
        timeout: opts.timeoutMs ?? CMD_TIMEOUT_MS,
        signal: opts.signal,
      });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${command} ${args.join(' ')} in ${ns} failed: ${e.stderr?.trim() || e.message}`);
    }
  }

  /** Kills what still runs in this run's namespaces and deletes them (their veths and the bridge go with
   *  them). Never throws: every step is tried; failures are reported on stderr. */
  async destroy(): Promise<void> {
    for (const ns of [...this.#created].reverse()) {
      await deleteNs(ns).catch((err) => console.error(`netns cleanup: ${(err as Error).message}`));
    }
    this.#created.length = 0;
    this.hosts.length = 0;
  }

  async #addNs(ns: string, opts: { signal?: AbortSignal }): Promise<void> {
    await ip(['netns', 'add', ns], opts);
    this.#created.push(ns);
  }
}

/** The namespaces that exist, by name. */
export async function listNs(): Promise<string[]> {
  const out = await ip(['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean);
}

/** SIGKILLs every process in `ns` (by pid, as `ip netns pids` lists them), then deletes the namespace. */
async function deleteNs(ns: string): Promise<void> {
  const pids = (await ip(['netns', 'pids', ns]).catch(() => ''))
    .split('\n')
    .map(Number)
    .filter((p) => p > 0 && p !== process.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  await waitFor(
    () => pids.every((pid) => !alive(pid)),
    `processes ${pids.join(', ')} in ${ns} to exit`,
    5_000,
  );
  await ip(['netns', 'del', ns]);
}

/** Whether `pid` runs (a zombie does not: nothing may reap it in a container without an init). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Deletes namespaces left by earlier runs of this helper whose test process no longer exists. */
async function removeOrphans(): Promise<void> {
  for (const ns of await listNs()) {
    const m = NAME_RE.exec(ns);
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) {
      await deleteNs(ns).catch((err) => console.error(`netns cleanup of ${ns}: ${(err as Error).message}`));
    }
  }
}

/** Forwards every connection on the Unix socket argv[1] to 127.0.0.1:argv[2] (run inside a namespace). */
const FORWARDER = `
const net = require('node:net');
const [path, port] = process.argv.slice(1);
net.createServer((s) => {
  const t = net.connect(Number(port), '127.0.0.1');
  s.pipe(t).pipe(s);
  s.on('error', () => t.destroy());
  t.on('error', () => s.destroy());
}).listen(path, () => process.stdout.write('listening\\n'));
`;

export interface Relay {
  /** http://127.0.0.1:PORT in the root namespace, reaching 127.0.0.1:targetPort in the namespace. */
  url: string;
  stop(): Promise<void>;
}

/** A relay from the root namespace to 127.0.0.1:`port` inside `ns` (see the top of this file). */
export async function startRelay(
  lab: NetnsLab,
  ns: string,
  port: number,
  socketPath: string,
): Promise<Relay> {
  const forwarder = lab.spawn(ns, process.execPath, ['-e', FORWARDER, socketPath, String(port)]);
  let out = '';
  forwarder.stdout!.on('data', (d) => {
    out += d;
  });
  forwarder.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<void>((r) => forwarder.on('exit', () => r()));
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    if (forwarder.exitCode === null && forwarder.signalCode === null) forwarder.kill('SIGKILL');
    await exited;
  };
  try {
    await waitFor(() => out.includes('listening'), `the API relay in ${ns} to listen (${out})`, 10_000);
    server = createServer((c) => {
      const t = createConnection(socketPath);
      sockets.add(c).add(t);
      c.pipe(t).pipe(c);
      const end = () => {
        c.destroy();
        t.destroy();
        sockets.delete(c);
        sockets.delete(t);
      };
      c.on('error', end).on('close', end);
      t.on('error', end).on('close', end);
    });
    const srv = server;
    await new Promise<void>((r, j) => srv.once('error', j).listen(0, '127.0.0.1', () => r()));
    const addr = srv.address() as { port: number };
    return { url: `http://127.0.0.1:${addr.port}`, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The xenosd API port inside every host namespace (each has its own loopback, so one port fits all). */
export const NS_API_PORT = 7080;
/** The xenosd p2p port on every host's eth0. */
export const NS_P2P_PORT = 4001;

/**
 * Starts xenosd inside `host`'s namespace: API on 127.0.0.1:NS_API_PORT there (reached through a relay),
 * p2p on ADDRESS:NS_P2P_PORT, process driver, `args` added (e.g. --cluster-key, --join, --host-timeout).
 * Resolves once it serves its API and wrote p2p.addrs; the result fits `TestCluster`'s helpers (json,
 * hostReady, cleanup) when pushed to its `hosts`. stop() ends xenosd (SIGTERM, SIGKILL after 10 s) and the relay.
 */
export async function startXenosdIn(
  lab: NetnsLab,
  host: NetnsHost,
  init: { name: string; dataDir: string; args: string[]; timeoutMs?: number },
): Promise<ClusterHost> {
  const run = runXenosd(
    [
      '--data-dir',
      init.dataDir,
      '--host-name',
      init.name,
      '--api',
      `127.0.0.1:${NS_API_PORT}`,
      '--p2p',
      `${host.address}:${NS_P2P_PORT}`,
      '--driver',
      'process',
      ...init.args,
    ],
    { spawnWith: (command, args) => lab.spawn(host.ns, command, args) },
  );
  const { child } = run;
  let relay: Relay | undefined;
  try {
    await waitFor(
      () => {
        if (child.exitCode !== null)
          throw new Error(`xenosd ${init.name} exited with ${child.exitCode}: ${run.stderr()}`);
        return (
          /serving API on/.test(run.stdout()) && readFileSync(join(init.dataDir, 'p2p.addrs'), 'utf8').trim()
        );
      },
      `xenosd ${init.name} in ${host.ns} to serve its API and write p2p.addrs`,
      init.timeoutMs ?? 20_000,
    );
    relay = await startRelay(lab, host.ns, NS_API_PORT, join(init.dataDir, '..', `${init.name}.api.sock`));
  } catch (e) {
    await stopXenosd(run);
    throw new Error(`${(e as Error).message}\n--- xenosd ${init.name} stderr:\n${run.stderr()}`);
  }
  const addrs = readFileSync(join(init.dataDir, 'p2p.addrs'), 'utf8').trim().split('\n');
  const token = readFileSync(join(init.dataDir, 'admin.token'), 'utf8').trim();
  const url = relay.url;
  const r = relay;
  const proc: XenosdProcess = {
    ...run,
    dataDir: init.dataDir,
    url,
    token,
    async stop() {
      const code = await stopXenosd(run);
      await r.stop();
      return code;
    },
    api: (path, reqInit) => apiFetch(url, token, path, reqInit),
  };
  const peerId = /\/p2p\/([^/]+)$/.exec(addrs[0])?.[1] ?? '';
  return { ...proc, name: init.name, peerId, addrs };
}

/** Resolves once `cond` holds (a throw counts as not yet); after `timeoutMs` throws naming `what` and the
 *  last error. Polled every 50 ms, as test/cluster/harness.ts's waitFor. */
async function waitFor(cond: () => unknown, what: string, timeoutMs: number): Promise<void> {
  let last = '';
  const ok = await waitUntil(
    async () => {
      try {
        return Boolean(await cond());
      } catch (err) {
        last = (err as Error).message;
        return false;
      }
    },
    { timeoutMs, intervalMs: 50 },
  );
  if (!ok)
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last: ${last})` : ''}`);
}
