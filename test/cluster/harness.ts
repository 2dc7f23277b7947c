// Test harness for clusters of REAL xenosd processes on 127.0.0.1: each with its own data dir, API on a
// free port, p2p on a free port, one shared cluster key, joined to the first host; labels zone=<name>.
// Each runs through the test entry point xenosd-with-faults.ts (the same daemon plus a partition hook
// watching a deny file per host), so `deny()` can cut hosts apart.
// Tears everything down: instances are deleted first (their process-driver domains outlive xenosd by
// design), then every xenosd is stopped and its directory removed.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach } from 'vitest';
import { killAllCtl, xenosctl } from '../cli/run-xenosctl.ts';
import { logLines, startXenosd, type XenosdProcess } from '../daemon/xenosd-process.ts';
import { unmountUnder } from '../unmount-under.ts';
import { until } from '../wait.ts';
import { killHost, killProcessesMentioning } from './kill-host.ts';

/** xenosd with the partition hook (see fault-injection.ts). */
const XENOSD_WITH_FAULTS = join(import.meta.dirname, 'xenosd-with-faults.ts');

/** The ServiceInstance collection of namespace default. */
export const SI = '/apis/xenos.io/v1alpha1/namespaces/default/serviceinstances';

/** An instance no host can take (so nothing runs): a pure desired-state write. */
export function parked(name: string) {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name },
    spec: { templateRef: { name: 'none' }, runStrategy: 'Halted', hostSelector: { zone: 'nowhere' } },
  };
}

export interface ClusterHost extends XenosdProcess {
  name: string;
  peerId: string;
  addrs: string[];
  /** The deny file of the host's partition hook (fault injection); absent where another way partitions
   *  hosts (network namespaces). */
  denyFile?: string;
}

/** `xenosctl ARGS` against host `h`, with its admin token. */
export function ctl(h: Pick<ClusterHost, 'url' | 'token'>, args: string[]) {
  return xenosctl(args, { env: { XENOS_SERVER: h.url, XENOS_TOKEN: h.token } });
}

export interface HostOptions {
  keyFile?: string;
  join?: string[];
  dataDir?: string;
  args?: string[];
  /** A directory through which the test holds this host's outgoing migrations midway (migration-gate.ts). */
  migrationGate?: string;
  /** How long xenosd may take to serve. Default startXenosd's (20 s); longer under emulation. */
  startTimeoutMs?: number;
}

/** test/wait.ts's until (every 50 ms), in the argument order the cluster tests use. */
export function waitFor<T>(
  cond: () => T | Promise<T>,
  what: string,
  timeoutMs = 20_000,
): Promise<NonNullable<T>> {
  return until(what, cond, { timeoutMs, intervalMs: 50 });
}

/** The status of an instance's (or any object's) Ready condition, if it has one. */
export const readyOf = (o: any): string | undefined =>
  o.status?.conditions?.find((c: any) => c.type === 'Ready')?.status;

/** The URL of an instance's first endpoint, as its status names it. */
export function endpointUrl(i: any): string {
  const ep = i.status.endpoints[0];
  return ep.url ?? `http://${ep.address}:${ep.port}/`;
}

/** Whether `url` answers 2xx within a second (false for a refused or silent port). */
export const answers = (url: string): Promise<boolean> =>
  fetch(url, { signal: AbortSignal.timeout(1000) }).then(
    (r) => r.ok,
    () => false,
  );

/** After the file's tests: every xenosctl still running killed, the cluster's hosts stopped, `dir` removed. */
export function cleanUpAfterAll(cluster: TestCluster, dir: string): void {
  afterAll(async () => {
    killAllCtl();
    await cluster.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);
}

/** An `err` field of a log line, as `: message`. */
function errText(err: unknown): string {
  return err && typeof err === 'object' && 'message' in err ? `: ${String(err.message)}` : '';
}

/** Log levels a failed test prints from each host. */
const WARNINGS = new Set(['warn', 'error', 'fatal']);

export class TestCluster {
  readonly root = mkdtempSync(join(tmpdir(), 'xenos-cluster-'));
  readonly keyFile = join(this.root, 'swarm.key');
  readonly hosts: ClusterHost[] = [];
  readonly hostTimeout: string;

  constructor(init: { hostTimeout?: string } = {}) {
    this.hostTimeout = init.hostTimeout ?? '2s';
    // A failed test says what each host warned of while it ran (a failed migration, a dropped link):
    // the assertion alone rarely tells why a cluster did what it did.
    beforeEach(({ onTestFailed }) => {
      // Where each host's log stood; a host started (or restarted) since is read from its start.
      const from = new Map(this.hosts.map((h) => [h, h.stderr().length]));
      onTestFailed(() => {
        for (const h of this.hosts) {
          const out = h.stderr();
          const at = from.get(h) ?? 0;
          const cut = at > 0 ? out.indexOf('\n', at - 1) : -1; // from the first whole line
          const start = at > 0 ? (cut < 0 ? out.length : cut + 1) : 0;
          const said = logLines(out.slice(start)).filter((l) => WARNINGS.has(l.level));
          if (said.length === 0) continue;
          console.log(
            `--- ${h.name}: the last ${Math.min(40, said.length)} of ${said.length} warnings while the test ran`,
          );
          for (const l of said.slice(-40))
            console.log(`${l.time ?? ''} ${l.level} [${l.component ?? ''}] ${l.msg}${errText(l.err)}`);
        }
      });
    });
  }

  async startHosts(names: string[], args: string[] = []): Promise<ClusterHost[]> {
    const seed = await this.startHost(names[0], { args });
    const rest = await Promise.all(names.slice(1).map((n) => this.startHost(n, { join: seed.addrs, args })));
    const all = [seed, ...rest];
    await waitFor(async () => {
      for (const h of all) if ((await this.hostNames(h)).length < all.length) return false;
      return true;
    }, `every host to see all ${all.length} Host objects`);
    return all;
  }

  async startHost(name: string, opts: HostOptions = {}): Promise<ClusterHost> {
    const dataDir = opts.dataDir ?? join(this.root, name);
    const denyFile = join(this.root, `${name}.deny`);
    writeFileSync(denyFile, '');
    const p = await startXenosd({
      dataDir,
      hostName: name,
      timeoutMs: opts.startTimeoutMs,
      entry: {
        script: XENOSD_WITH_FAULTS,
        args: [
          '--deny-file',
          denyFile,
          ...(opts.migrationGate ? ['--migration-gate', opts.migrationGate] : []),
        ],
      },
      args: [
        '--p2p',
        '127.0.0.1:0',
        '--cluster-key',
        opts.keyFile ?? this.keyFile,
        ...(opts.join ?? []).flatMap((a) => ['--join', a]),
        '--label',
        `zone=${name}`,
        '--host-timeout',
        this.hostTimeout,
        '--driver',
        'process',
        ...(opts.args ?? []),
      ],
    });
    const addrs = readFileSync(join(dataDir, 'p2p.addrs'), 'utf8').trim().split('\n');
    const peerId = /\/p2p\/([^/]+)$/.exec(addrs[0])![1];
    const host: ClusterHost = { ...p, name, peerId, addrs, denyFile };
    const i = this.hosts.findIndex((h) => h.name === name);
    if (i >= 0) this.hosts[i] = host;
    else this.hosts.push(host);
    return host;
  }

  host(name: string): ClusterHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  async json<T = any>(h: ClusterHost, path: string, init?: RequestInit): Promise<T> {
    const res = await h.api(path, init);
    const text = await res.text();
    if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${path} on ${h.name}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  /** POSTs `body` as JSON to `path` on `h`; the created object, or an error with the server's answer. */
  post<T = any>(h: ClusterHost, path: string, body: unknown): Promise<T> {
    return this.json<T>(h, path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  async hostNames(h: ClusterHost): Promise<string[]> {
    const list = await this.json(h, '/apis/xenos.io/v1alpha1/hosts');
    return list.items.map((x: any) => x.metadata.name);
  }

  /** The Ready condition status of Host `name` as `h` stores it. */
  async hostReady(h: ClusterHost, name: string): Promise<string | undefined> {
    const res = await h.api(`/apis/xenos.io/v1alpha1/hosts/${name}`);
    if (!res.ok) return undefined;
    const obj = (await res.json()) as { status?: { conditions?: { type: string; status: string }[] } };
    return obj.status?.conditions?.find((c) => c.type === 'Ready')?.status;
  }

  /** The host dies as a machine does: its xenosd and its domains, kill -9 (kill-host.ts). */
  killHost(h: ClusterHost): Promise<void> {
    return killHost(h);
  }

  /** Makes `a` refuse connections to `others` (list `a` on them too: a partition is symmetric), or,
   *  with [], allows them again. Resolves once `a` logged that it applied the list. */
  async deny(a: ClusterHost, others: ClusterHost[]): Promise<void> {
    if (!a.denyFile) throw new Error(`host ${a.name} runs without the partition hook`);
    const before = a.stderr().length;
    writeFileSync(a.denyFile, others.flatMap((o) => o.addrs).join('\n'));
    const want = others.length ? 'fault injection: denying' : 'fault injection: allowing all';
    await waitFor(() => a.stderr().slice(before).includes(want), `${a.name} applying its deny list`, 5_000);
  }

  /** Deletes every deployment and instance, in every namespace (through a live host), and waits until no
   *  host lists any; then stops all hosts, and kills whatever domain process of theirs is left. */
  async cleanup(): Promise<void> {
    for (const h of this.hosts) if (h.denyFile) writeFileSync(h.denyFile, '');
    const live = this.hosts.filter((h) => h.child.exitCode === null && h.child.signalCode === null);
    const via = live[0];
    const API = '/apis/xenos.io/v1alpha1';
    const all = async (h: ClusterHost, plural: string) => (await this.json(h, `${API}/${plural}`)).items;
    if (via) {
      try {
        // Deployments first: they would make their replicas again.
        for (const plural of ['servicedeployments', 'serviceinstances'])
          for (const o of await all(via, plural))
            await via.api(`${API}/namespaces/${o.metadata.namespace}/${plural}/${o.metadata.name}`, {
              method: 'DELETE',
            });
        await waitFor(
          async () => {
            for (const h of live) if ((await all(h, 'serviceinstances')).length > 0) return false;
            return true;
          },
          'every instance deleted on every host',
          20_000,
        );
      } catch (err) {
        console.error(`cluster cleanup: ${(err as Error).message}`);
      }
    }
    await Promise.all(this.hosts.map((h) => h.stop()));
    this.hosts.length = 0;
    // A domain nobody deleted (a failed test, a host killed before its instances went) outlives its xenosd.
    await killProcessesMentioning(`${this.root}/`, 'the cluster').catch((err) =>
      console.error(`cluster cleanup: ${(err as Error).message}`),
    );
    unmountUnder(this.root);
    rmSync(this.root, { recursive: true, force: true });
  }
}
