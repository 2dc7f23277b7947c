// The contract every hypervisor driver passes, with real domains: prepare, start, reach the service, stop
// with an exit code, crash detection, adoption by a NEW driver instance on the same data dir (a restarted
// xenosd) without a second copy, logs, destroy — and isolation: a hostile domain cannot read the data dir,
// other domains' files or token, xenosd's /proc, cannot walk out with `..`, write outside its own files or
// signal anything outside it, and exec runs inside the domain, not on the host. A driver's test file calls
// runDriverContract with a fixture that knows how to make its domains (a script for process, a disk image
// for QEMU/Xen).

import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DomainInfo, DomainSpec, Driver, InstanceIdentity } from '../../src/drivers/driver.ts';
import { domainIdFor } from '../../src/drivers/driver.ts';
import { healthTargetFor, probeHealth } from '../../src/drivers/health.ts';
import { waitUntil } from '../../src/drivers/wait-until.ts';
import { unmountUnder } from '../unmount-under.ts';
import { type MigrationFixture, migrationContract } from './migration-contract.ts';

export interface DriverContractFixture {
  /** A driver keeping its domains under `dataDir`; a second call with the same dir simulates a restart. */
  makeDriver(dataDir: string): Driver;
  /** A domain whose service answers HTTP GET `namePath` on port `http` with a body containing the
   *  instance name, logs `ready` on stdout/console once listening, and exits 0 on a polite stop. */
  serverSpec(instance: InstanceIdentity): DomainSpec;
  /** Where serverSpec's service answers with the instance name. Default `/`. */
  namePath?: string;
  /** A domain that crashes at once: its service exits with code `crashExitCode`. */
  crashSpec(instance: InstanceIdentity): DomainSpec;
  /** The exit code a crash of crashSpec ends with. Default 3 (the service's own code); a VM has no
   *  service exit code: its hypervisor's failure code is what a crash looks like there. */
  crashExitCode?: number;
  /** Makes the running serverSpec domain `info` write new log lines and returns a text they contain and
   *  the last line it writes, when known. Default: GET /followed-request, which the service logs as
   *  `GET /followed-request`. A VM whose service logs nothing per request uses its console instead. */
  newLogOutput?(driver: Driver, info: DomainInfo): Promise<{ contains: string; lastLine?: string }>;
  /** How long a domain may take to start answering. */
  bootTimeoutMs?: number;
  /** How long a polite stop may take before the driver forces it (default 5 s; a VM under nested
   *  emulation on a loaded machine needs longer to power off). */
  stopGraceMs?: number;
  /** How long one case may take (several boots and stops). Default: the runner's. */
  testTimeoutMs?: number;
  /** A domain whose service answers GET / on port `http` with the JSON of
   *  test/drivers/fixtures/hostile/probe.mjs, trying the reads, writes and kills `attack` names. */
  hostileSpec?(instance: InstanceIdentity, attack: HostileAttack): DomainSpec;
  /** Host paths of domain `id`'s private files under `dataDir` (its record, token, files). */
  privatePaths?(dataDir: string, id: string): string[];
  /** How the driver moves a domain between hosts and the state it keeps: runs the migration cases
   *  (migration-contract.ts). */
  migration?: MigrationFixture;
}

export interface HostileAttack {
  read: string[];
  write: string[];
  kill: number[];
}

/** What the hostile service saw (test/drivers/fixtures/hostile/probe.mjs). */
export interface HostileReport {
  uid: number;
  token: string;
  root: string[];
  pids: string[];
  cmdlines: string[];
  reads: Record<string, string>;
  writes: Record<string, string>;
  kills: Record<string, string>;
  fds: Record<string, string>;
}

let counter = 0;
export function testInstance(name = 'svc'): InstanceIdentity {
  counter += 1;
  const uid = `${process.pid.toString(16)}${counter.toString(16).padStart(4, '0')}-0000-4000-8000-000000000000`;
  return { namespace: 'test', name: `${name}-${counter}`, uid };
}

export async function httpGet(url: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000), headers: { connection: 'close' } });
    return { status: res.status, body: await res.text() };
  } catch {
    return undefined;
  }
}

/** Tracks drivers and data dirs a test made, and tears every domain down afterwards. */
export class DriverHarness {
  readonly drivers: Driver[] = [];
  readonly dirs: string[] = [];

  async dataDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'xenos-driver-'));
    this.dirs.push(dir);
    return dir;
  }

  track<T extends Driver>(driver: T): T {
    this.drivers.push(driver);
    return driver;
  }

  async cleanup(): Promise<void> {
    for (const d of this.drivers) {
      for (const info of await d.list().catch(() => [] as DomainInfo[]))
        await d.destroy(info.id).catch(() => {});
      await d.stop();
    }
    this.drivers.length = 0;
    for (const dir of this.dirs) {
      unmountUnder(dir); // in case a destroy above failed
      await rm(dir, { recursive: true, force: true });
    }
    this.dirs.length = 0;
  }
}

/** A fresh data dir and a started driver for each test of the enclosing describe (handed to `use`), torn
 *  down after it. Returns the harness, for more drivers on the same dir. */
export function driverPerTest<T extends Driver>(
  make: (dataDir: string) => T,
  use: (driver: T, dataDir: string) => void,
): DriverHarness {
  const harness = new DriverHarness();
  beforeEach(async () => {
    const dataDir = await harness.dataDir();
    const driver = harness.track(make(dataDir));
    await driver.start();
    use(driver, dataDir);
  });
  afterEach(() => harness.cleanup());
  return harness;
}

export async function waitForState(
  driver: Driver,
  id: string,
  states: string[],
  timeoutMs = 15_000,
): Promise<DomainInfo> {
  let last: DomainInfo | undefined;
  const ok = await waitUntil(
    async () => {
      last = await driver.inspect(id);
      return last !== undefined && states.includes(last.state);
    },
    { timeoutMs },
  );
  if (!ok) throw new Error(`domain ${id} did not reach ${states.join('|')}; last: ${JSON.stringify(last)}`);
  return last!;
}

export async function waitForBody(url: string, includes: string, timeoutMs: number): Promise<string> {
  let body = '';
  const ok = await waitUntil(
    async () => {
      const r = await httpGet(url);
      body = r?.body ?? '';
      return r?.status === 200 && body.includes(includes);
    },
    { timeoutMs, intervalMs: 50 },
  );
  if (!ok)
    throw new Error(
      `${url} did not answer with "${includes}" within ${timeoutMs} ms (last: ${JSON.stringify(body)})`,
    );
  return body;
}

async function collectLogs(driver: Driver, id: string): Promise<string> {
  let text = '';
  for await (const chunk of driver.logs(id)) text += chunk.data.toString();
  return text;
}

export function runDriverContract(name: string, fixture: DriverContractFixture): void {
  describe(`driver contract: ${name}`, { timeout: fixture.testTimeoutMs }, () => {
    const harness = new DriverHarness();
    let dataDir: string;
    let driver: Driver;
    const boot = fixture.bootTimeoutMs ?? 15_000;
    const nameUrl = (ep: { address: string; port: number }) =>
      `http://${ep.address}:${ep.port}${fixture.namePath ?? '/'}`;

    beforeEach(async () => {
      dataDir = await harness.dataDir();
      driver = harness.track(fixture.makeDriver(dataDir));
      await driver.start();
    });
    afterEach(() => harness.cleanup());

    it('probes usable on this host', async () => {
      expect(await driver.probe()).toEqual({ usable: true });
    });

    it('prepares a domain idempotently and lists it as prepared', async () => {
      const spec = fixture.serverSpec(testInstance());
      expect(spec.id).toBe(domainIdFor(spec.instance));
      const first = await driver.prepare(spec);
      expect(first).toMatchObject({
        id: spec.id,
        state: 'prepared',
        instance: spec.instance,
        restartCount: 0,
      });
      const again = await driver.prepare(spec);
      expect(again.state).toBe('prepared');
      expect((await driver.list()).map((d) => [d.id, d.state])).toEqual([[spec.id, 'prepared']]);
    });

    it('starts a domain whose endpoint answers, and never starts a second copy', async () => {
      const spec = fixture.serverSpec(testInstance('web'));
      const info = await driver.startDomain(spec);
      expect(info.state).toBe('running');
      expect(info.endpoints).toHaveLength(1);
      const ep = info.endpoints[0];
      expect(ep.name).toBe('http');
      const body = await waitForBody(nameUrl(ep), spec.instance.name, boot);
      expect(body).toContain(spec.instance.name);
      const again = await driver.startDomain(spec);
      expect(again.pid).toBe(info.pid);
      expect(again.startedAt).toBe(info.startedAt);
      expect(again.restartCount).toBe(0);
      expect(
        await probeHealth({ http: { port: 'http', path: '/' } }, healthTargetFor(driver, again)),
      ).toMatchObject({
        ok: true,
      });
    });

    it('stops politely with exit code 0, closes the endpoint, and restarts on the same port', async () => {
      const spec = fixture.serverSpec(testInstance());
      const info = await driver.startDomain(spec);
      const url = nameUrl(info.endpoints[0]);
      await waitForBody(url, spec.instance.name, boot);
      const stopped = await driver.stopDomain(spec.id, { graceMs: fixture.stopGraceMs ?? 5000 });
      expect(stopped).toMatchObject({ state: 'stopped', exitCode: 0 });
      expect(await httpGet(url)).toBeUndefined();
      expect((await driver.stopDomain(spec.id))?.state).toBe('stopped');
      const restarted = await driver.startDomain(spec);
      expect(restarted.state).toBe('running');
      expect(restarted.restartCount).toBe(1);
      expect(restarted.endpoints[0].port).toBe(info.endpoints[0].port);
      await waitForBody(url, spec.instance.name, boot);
    });

    it('reports a crashing service as crashed with its exit code', async () => {
      const spec = fixture.crashSpec(testInstance('crash'));
      await driver.startDomain(spec);
      // A VM must boot before its service can crash: as long as a boot may take.
      const info = await waitForState(driver, spec.id, ['crashed', 'stopped'], Math.max(15_000, boot));
      expect(info, info.message).toMatchObject({ state: 'crashed', exitCode: fixture.crashExitCode ?? 3 });
      expect(info.finishedAt).toBeTypeOf('string');
    });

    it('is adopted by a new driver on the same data dir, without a second copy', async () => {
      const spec = fixture.serverSpec(testInstance('adopt'));
      const info = await driver.startDomain(spec);
      await waitForBody(nameUrl(info.endpoints[0]), spec.instance.name, boot);
      await driver.stop();
      const restarted = harness.track(fixture.makeDriver(dataDir));
      await restarted.start();
      const listed = await restarted.list();
      expect(listed).toHaveLength(1);
      expect(listed[0]).toMatchObject({
        id: spec.id,
        state: 'running',
        pid: info.pid,
        instance: spec.instance,
      });
      const adopted = await restarted.startDomain(spec);
      expect(adopted.pid).toBe(info.pid);
      expect(adopted.restartCount).toBe(0);
      expect((await restarted.stopDomain(spec.id, { graceMs: fixture.stopGraceMs ?? 5000 }))?.state).toBe(
        'stopped',
      );
    });

    it('streams logs, following new output until aborted', async () => {
      const spec = fixture.serverSpec(testInstance('logs'));
      const info = await driver.startDomain(spec);
      const url = `http://127.0.0.1:${info.endpoints[0].port}`;
      await waitForBody(nameUrl(info.endpoints[0]), spec.instance.name, boot);
      await waitUntil(async () => (await collectLogs(driver, spec.id)).includes('ready'), {
        timeoutMs: boot,
      });

      const abort = new AbortController();
      let followed = '';
      const following = (async () => {
        for await (const chunk of driver.logs(spec.id, { follow: true, tail: 0, signal: abort.signal })) {
          followed += chunk.data.toString();
        }
      })();
      let output: { contains: string; lastLine?: string } = {
        contains: '/followed-request',
        lastLine: 'GET /followed-request',
      };
      if (fixture.newLogOutput) {
        output = await fixture.newLogOutput(driver, info);
        await waitUntil(() => followed.includes(output.contains), { timeoutMs: boot });
      } else {
        // The follower may find its starting point only after a first request was logged (nothing says
        // when it has): request again until it has seen one.
        await waitUntil(
          async () => {
            await httpGet(`${url}/followed-request`);
            return waitUntil(() => followed.includes(output.contains), { timeoutMs: 1000 });
          },
          { timeoutMs: boot },
        );
      }
      expect(followed).toContain(output.contains);
      expect(followed).not.toContain('ready');

      let tail = '';
      for await (const chunk of driver.logs(spec.id, { tail: 1 }))
        if (chunk.stream !== 'stderr') tail += chunk.data;
      const lines = tail.trim().split('\n');
      expect(lines).toHaveLength(1);
      if (output.lastLine) expect(lines).toEqual([output.lastLine]);
      // A log that ended (the domain stopped): the follower reaches its last line too.
      else {
        await waitUntil(() => followed.includes(lines[0]), { timeoutMs: boot });
        expect(followed).toContain(lines[0]);
      }
      abort.abort();
      await following;
    });

    it('keeps a hostile domain away from the data dir, other domains, xenosd and the host', async () => {
      if (!fixture.hostileSpec || !fixture.privatePaths) return;
      // Secrets in the data dir, as xenosd keeps them, and a victim domain with its own token.
      const adminToken = join(dataDir, 'admin.token');
      await writeFile(adminToken, 'admin-secret', { mode: 0o600 });
      const victim = { ...fixture.serverSpec(testInstance('victim')), token: 'victim-token' };
      const victimInfo = await driver.startDomain(victim);
      const victimUrl = nameUrl(victimInfo.endpoints[0]);
      await waitForBody(victimUrl, victim.instance.name, boot);
      const victimFiles = fixture.privatePaths(dataDir, victim.id);
      const read = [
        adminToken,
        dataDir,
        ...victimFiles,
        `/proc/${process.pid}/environ`,
        `/proc/${process.pid}/cmdline`,
        `/proc/${process.pid}/fd`,
        `/proc/${victimInfo.pid}/environ`,
        '/proc/1/environ',
        `/proc/1/root${adminToken}`,
        `/proc/self/cwd/../../../admin.token`,
        '../../../admin.token',
        '../../../../../../../../..' + adminToken,
        '/etc/shadow',
        '/root',
      ];
      const write = [
        join(dataDir, 'pwned'),
        ...victimFiles.map((f) => `${f}.pwned`),
        '/usr/pwned',
        '/etc/pwned',
      ];
      const hostile = {
        ...fixture.hostileSpec(testInstance('hostile'), {
          read,
          write,
          kill: [process.pid, victimInfo.pid!],
        }),
        token: 'hostile-token',
      };
      const info = await driver.startDomain(hostile);
      const body = await waitForBody(`http://127.0.0.1:${info.endpoints[0].port}/`, '"reads"', boot);
      const report = JSON.parse(body) as HostileReport;

      // The probe works: it reads what is its own.
      expect(report.token).toBe('hostile-token');
      for (const path of read) expect(report.reads[path], path).not.toMatch(/^(read|listed)$/);
      for (const path of write) {
        expect(report.writes[path], path).not.toBe('written');
        await expect(access(path), path).rejects.toThrow();
      }
      for (const pid of [process.pid, victimInfo.pid!]) expect(report.kills[pid], String(pid)).toBe('ESRCH');
      // It sees its own processes only, none of the host's, and holds no fd of xenosd's files.
      expect(report.pids).not.toContain(String(process.pid));
      expect(report.pids.length).toBeLessThan(10);
      for (const target of Object.values(report.fds)) expect(target).not.toContain(dataDir);
      // Nothing it can see names where the data dir is.
      for (const cmdline of report.cmdlines) expect(cmdline).not.toContain(dataDir);
      expect(report.uid).not.toBe(0);
      // The victim lives on, untouched.
      await waitForBody(victimUrl, victim.instance.name, boot);
    });

    it('runs exec inside the domain: its uid, its files, not the host', async () => {
      if (!driver.exec) return;
      const spec = { ...fixture.serverSpec(testInstance('exec')), token: 'exec-token' };
      const info = await driver.startDomain(spec);
      await waitForBody(nameUrl(info.endpoints[0]), spec.instance.name, boot);
      const secret = join(dataDir, 'admin.token');
      await writeFile(secret, 'admin-secret', { mode: 0o600 });
      const r = await driver.exec(spec.id, [
        '/bin/sh',
        '-c',
        `id -u; cat "$XENOS_TOKEN_FILE"; echo; ls /; cat ${secret} || echo denied; ls /proc | grep -c '^[0-9]'`,
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      const [uid, token, ...rest] = r.stdout.trim().split('\n');
      expect(Number(uid)).toBe(info.isolation?.uid);
      expect(token).toBe('exec-token');
      expect(rest).not.toContain('admin-secret');
      expect(rest).toContain('denied');
      expect(rest).not.toContain('work');
      // The health check sees the service's processes (its PID namespace), and few else.
      expect(Number(rest.at(-1))).toBeLessThan(10);
      const failing = await driver.exec(spec.id, ['/bin/sh', '-c', 'exit 4']);
      expect(failing.exitCode).toBe(4);
    });

    it('destroys a running domain and forgets it', async () => {
      const spec = fixture.serverSpec(testInstance('gone'));
      const info = await driver.startDomain(spec);
      await waitForBody(nameUrl(info.endpoints[0]), spec.instance.name, boot);
      await driver.destroy(spec.id);
      expect(await driver.inspect(spec.id)).toBeUndefined();
      expect(await driver.list()).toEqual([]);
      expect(await httpGet(`http://127.0.0.1:${info.endpoints[0].port}/`)).toBeUndefined();
      await driver.destroy(spec.id);
    });

    if (fixture.migration)
      migrationContract({
        harness,
        makeDriver: fixture.makeDriver,
        serverSpec: fixture.serverSpec,
        instance: testInstance,
        answering: async (info, spec) => {
          await waitForBody(nameUrl(info.endpoints[0]), spec.instance.name, boot);
        },
        migration: fixture.migration,
      });
  });
}
