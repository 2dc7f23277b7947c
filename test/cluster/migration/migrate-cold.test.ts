// Cold migration end to end with two real xenosd processes (process driver): an instance that keeps a
// counter in a file of its own moves to the other host and answers there with its count continued; the
// target's xenosd killed midway → the migration Failed with a reason, the instance still answers on the
// source, no copy is left on the target after it restarts, and a retry succeeds; the source's xenosd killed
// midway → Failed once it is back, exactly one running copy, and a retry succeeds. "Midway" is made
// deterministic by the migration gate (migration-gate.ts): the source holds its stream after 256 KiB.

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllCtl, xenosctl } from '../../cli/run-xenosctl.ts';
import { type ClusterHost, TestCluster, waitFor } from '../harness.ts';

const API = '/apis/xenos.io/v1alpha1/namespaces/default';
const JSON_BODY = { 'content-type': 'application/json' };

const SERVER = `import http from 'node:http';
import fs from 'node:fs';
fs.mkdirSync('state', { recursive: true });
const server = http.createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok\\n');
  let n = 0;
  try { n = Number(fs.readFileSync('state/count', 'utf8')); } catch {}
  fs.writeFileSync('state/count', String(n + 1));
  res.end('count=' + (n + 1) + '\\n');
});
server.listen(Number(process.env.PORT));
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => server.close(() => process.exit(0)));
`;

describe('cold migration between two real hosts', () => {
  const cluster = new TestCluster({ hostTimeout: '2s' });
  const dir = mkdtempSync(join(tmpdir(), 'xenos-migrate-'));
  const gate = (h: string) => join(dir, `gate-${h}`);
  let a: ClusterHost;
  let b: ClusterHost;
  let seq = 0;

  const start = (name: string, join?: string[]) =>
    cluster.startHost(name, { join, migrationGate: gate(name) });

  beforeAll(async () => {
    for (const h of ['a', 'b']) mkdirSync(gate(h));
    mkdirSync(join(dir, 'image'));
    writeFileSync(join(dir, 'image', 'server.mjs'), SERVER);
    writeFileSync(join(dir, 'image', 'ballast.bin'), randomBytes(2 * 1024 * 1024));
    a = await start('a');
    b = await start('b', a.addrs);
    await waitFor(
      async () => (await cluster.hostNames(a)).length === 2 && (await cluster.hostNames(b)).length === 2,
      'both hosts to see each other',
    );
    const pushed = await xenosctl(['image', 'push', '-q', join(dir, 'image')], {
      env: { XENOS_SERVER: a.url, XENOS_TOKEN: a.token },
      timeoutMs: 60_000,
    });
    expect(pushed.code, pushed.stderr).toBe(0);
    await post(a, 'servicetemplates', {
      kind: 'ServiceTemplate',
      metadata: { name: 'counter' },
      spec: {
        image: { digest: pushed.stdout.trim(), format: 'directory' },
        process: { command: ['node', 'server.mjs'] },
        ports: [{ name: 'http', port: 8080 }],
        healthCheck: { http: { port: 'http', path: '/healthz' }, periodSeconds: 1 },
      },
    });
    await post(a, 'serviceinstances', {
      kind: 'ServiceInstance',
      metadata: { name: 'counter-1' },
      spec: { templateRef: { name: 'counter' }, host: 'a', driver: 'process' },
    });
  }, 120_000);

  afterAll(async () => {
    if (process.env.XENOS_TEST_DUMP)
      for (const h of cluster.hosts) console.log(`--- ${h.name}\n${h.stderr().slice(-6000)}`);
    killAllCtl();
    await cluster.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, 90_000);

  async function post(h: ClusterHost, plural: string, body: object) {
    const res = await h.api(`${API}/${plural}`, {
      method: 'POST',
      headers: JSON_BODY,
      body: JSON.stringify({ apiVersion: 'xenos.io/v1alpha1', ...body }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    return res.json();
  }

  const instance = (via: ClusterHost) => cluster.json(via, `${API}/serviceinstances/counter-1`);

  /** The instance's answer, once `via` says it is Ready on `host` and its endpoint answers. */
  async function answer(via: ClusterHost, host: string): Promise<number> {
    const text = await waitFor(
      async () => {
        const i = await instance(via);
        const ready = i.status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True';
        const ep = i.status?.endpoints?.[0];
        if (i.status?.host !== host || !ready || !ep) return undefined;
        return (await fetch(ep.url ?? `http://${ep.address}:${ep.port}/`)).text();
      },
      `counter-1 answering on ${host} as ${via.name} sees it`,
      60_000,
    );
    return Number(/count=(\d+)/.exec(text)![1]);
  }

  async function migrate(via: ClusterHost, target: string): Promise<string> {
    const name = `move-${++seq}`;
    await post(via, 'servicemigrations', {
      kind: 'ServiceMigration',
      metadata: { name },
      spec: { instanceRef: { name: 'counter-1' }, targetHost: target, mode: 'Cold', timeoutSeconds: 120 },
    });
    return name;
  }

  async function settled(via: ClusterHost, name: string) {
    return waitFor(
      async () => {
        const m = await cluster.json(via, `${API}/servicemigrations/${name}`);
        return m.status?.phase === 'Succeeded' || m.status?.phase === 'Failed' ? m : undefined;
      },
      `${name} to end`,
      90_000,
    );
  }

  const ctl = (via: ClusterHost, args: string[]) =>
    xenosctl(args, { env: { XENOS_SERVER: via.url, XENOS_TOKEN: via.token }, timeoutMs: 150_000 });

  /** What host `h` holds of the instance's domain on disk (the domain and any half-received copy). */
  const domainsOn = (h: ClusterHost) =>
    existsSync(join(h.dataDir, 'domains'))
      ? readdirSync(join(h.dataDir, 'domains')).filter((n) => n.includes('counter-1'))
      : [];

  it('moves the instance with its files: it answers on the target with its count continued', async () => {
    expect(await answer(a, 'a')).toBe(1);
    expect(await answer(a, 'a')).toBe(2);
    const moved = await ctl(a, ['migrate', 'counter-1', 'b', '--mode', 'cold', '--wait', '--timeout', '2m']);
    expect(moved.code, moved.stderr).toBe(0);
    const name = /servicemigration\.xenos\.io\/(\S+) created/.exec(moved.stdout)![1];
    expect(moved.stdout).toMatch(/counter-1 runs on b \(downtime \d+ ms, \d+ bytes moved\)/);
    // --wait returned: the instance as a's API shows it already names b, with endpoints there.
    const now = await instance(a);
    expect(now.status.host).toBe('b');
    expect(now.status.endpoints.length).toBeGreaterThan(0);
    const m = await cluster.json(a, `${API}/servicemigrations/${name}`);
    expect(m.status.phase, JSON.stringify(m.status)).toBe('Succeeded');
    expect(m.status).toMatchObject({ sourceHost: 'a', targetHost: 'b', mode: 'Cold' });
    expect(m.status.bytesTransferred).toBeGreaterThan(2 * 1024 * 1024);
    expect(m.status.downtimeMs).toBeGreaterThan(0);
    expect(await answer(a, 'b')).toBe(3);
    expect(await answer(b, 'b')).toBe(4);
    await waitFor(() => domainsOn(a).length === 0, 'the old copy gone from a');
  }, 120_000);

  it('says why a migration cannot be made, and lists migrations with their columns', async () => {
    const missing = await ctl(a, ['migrate', 'nope', 'b']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no ServiceInstance "nope" in namespace default/);
    const bad = await ctl(a, ['migrate', 'counter-1', '--mode', 'warp']);
    expect(bad.code).toBe(2);
    const self = await ctl(a, ['migrate', 'counter-1', 'b', '--wait']);
    expect(self.code).toBe(1);
    expect(self.stderr).toMatch(/failed: .*already runs on b.*\(TargetIsSource\)/);
    const list = await ctl(a, ['get', 'servicemigrations']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/NAME\s+INSTANCE\s+SOURCE\s+TARGET\s+PHASE\s+PROGRESS\s+AGE/);
    expect(list.stdout).toMatch(/counter-1-\S+\s+counter-1\s+a\s+b\s+Succeeded\s+100/);
  }, 60_000);

  it('target killed midway: Failed, the instance runs on the source, no copy left, a retry succeeds', async () => {
    writeFileSync(join(gate('b'), 'armed'), '');
    const name = await migrate(b, 'a');
    await waitFor(() => existsSync(join(gate('b'), 'held')), 'the transfer held midway', 60_000);
    // Stopped for a cold move: the instance says so rather than Ready.
    await waitFor(async () => {
      const ready = (await instance(b)).status?.conditions?.find((c: any) => c.type === 'Ready');
      return ready?.status === 'False' && ready.reason === 'Migrating';
    }, 'counter-1 to say it is migrating');
    a.child.kill('SIGKILL');
    await a.exited;
    const m = await settled(b, name);
    expect(m.status.phase).toBe('Failed');
    const migrated = m.status.conditions.find((c: any) => c.type === 'Migrated');
    expect(migrated.reason).toMatch(/TargetLost|TransferFailed/);
    expect(migrated.message).toMatch(/runs on host b again/);
    expect(await answer(b, 'b')).toBe(5);
    a = await cluster.startHost('a', { dataDir: a.dataDir, join: b.addrs, migrationGate: gate('a') });
    await waitFor(() => domainsOn(a).length === 0, 'no copy of counter-1 left on a', 30_000);
    rmSync(join(gate('b'), 'armed'));
    rmSync(join(gate('b'), 'held'));
    const retry = await settled(b, await migrate(b, 'a'));
    expect(retry.status.phase, JSON.stringify(retry.status)).toBe('Succeeded');
    expect(await answer(b, 'a')).toBe(6);
  }, 240_000);

  it('source killed midway: Failed once it is back, one running copy, a retry succeeds', async () => {
    writeFileSync(join(gate('a'), 'armed'), '');
    const name = await migrate(a, 'b');
    await waitFor(() => existsSync(join(gate('a'), 'held')), 'the transfer held midway', 60_000);
    a.child.kill('SIGKILL');
    await a.exited;
    // The target lost the stream: it removes what it received.
    await waitFor(() => domainsOn(b).length === 0, 'b removing its half-received copy', 30_000);
    rmSync(join(gate('a'), 'armed'));
    rmSync(join(gate('a'), 'held'));
    a = await cluster.startHost('a', { dataDir: a.dataDir, join: b.addrs, migrationGate: gate('a') });
    const m = await settled(a, name);
    expect(m.status.phase).toBe('Failed');
    expect(m.status.conditions.find((c: any) => c.type === 'Migrated').reason).toBe('SourceRestarted');
    expect(await answer(a, 'a')).toBe(7);
    expect(domainsOn(b)).toEqual([]);
    const retry = await settled(a, await migrate(a, 'b'));
    expect(retry.status.phase, JSON.stringify(retry.status)).toBe('Succeeded');
    expect(await answer(b, 'b')).toBe(8);
  }, 240_000);

  it('picks the target by placement when none is given (never the source)', async () => {
    const moved = await ctl(b, ['migrate', 'counter-1', '--wait']);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toMatch(/counter-1 runs on a/);
    expect(await answer(b, 'a')).toBe(9);
  }, 120_000);
});
