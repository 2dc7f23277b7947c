// The process driver with real processes: the driver contract, then what only this driver does — cgroup
// limits, surviving the death of the process that started a domain, forced stops, parameter expansion,
// exec health checks and cold migration between two data dirs over real TCP sockets.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are Xenos `${params.X}` templates, not JS ones

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import type { DomainInfo, DomainSpec, InstanceIdentity } from '../../src/drivers/driver.ts';
import { domainIdFor } from '../../src/drivers/driver.ts';
import { healthTargetFor, probeHealth } from '../../src/drivers/health.ts';
import { Cgroups } from '../../src/drivers/process/cgroup.ts';
import { ProcessDriver } from '../../src/drivers/process/process-driver.ts';
import { waitUntil } from '../../src/drivers/wait-until.ts';
import {
  DriverHarness,
  runDriverContract,
  testInstance,
  waitForBody,
  waitForState,
} from './driver-contract.ts';

const IMAGE = join(import.meta.dirname, 'fixtures', 'http-service');
const HOSTILE_IMAGE = join(import.meta.dirname, 'fixtures', 'hostile');

function serviceSpec(
  instance: InstanceIdentity,
  env: Record<string, string> = {},
  extra: Partial<DomainSpec> = {},
): DomainSpec {
  return {
    id: domainIdFor(instance),
    instance,
    image: { path: IMAGE, digest: 'sha256:test-http-service' },
    process: { command: ['node', 'server.mjs'], env },
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    ...extra,
  };
}

runDriverContract('process', {
  makeDriver: (dataDir) => new ProcessDriver({}, { dataDir }),
  serverSpec: (instance) => serviceSpec(instance),
  crashSpec: (instance) => serviceSpec(instance, { EXIT_CODE: '3' }),
  hostileSpec: (instance, attack) => ({
    ...serviceSpec(instance, {
      HOSTILE_READ: JSON.stringify(attack.read),
      HOSTILE_WRITE: JSON.stringify(attack.write),
      HOSTILE_KILL: JSON.stringify(attack.kill),
    }),
    image: { path: HOSTILE_IMAGE, digest: 'sha256:test-hostile' },
    process: {
      command: ['node', 'probe.mjs'],
      env: {
        HOSTILE_READ: JSON.stringify(attack.read),
        HOSTILE_WRITE: JSON.stringify(attack.write),
        HOSTILE_KILL: JSON.stringify(attack.kill),
      },
    },
  }),
  // Cold: the files move (the domain's own file is the mark), memory does not.
  migration: {
    mode: 'cold',
    mark: async (driver, info, value) => {
      const r = await driver.exec!(info.id, ['/bin/sh', '-c', 'echo "$0" > ./migration-mark', value]);
      if (r.exitCode !== 0) throw new Error(`marking the domain failed: ${r.stderr}`);
    },
    read: async (driver, info) => {
      const r = await driver.exec!(info.id, ['/bin/sh', '-c', 'cat ./migration-mark']);
      return r.exitCode === 0 ? r.stdout.trim() : undefined;
    },
  },
  privatePaths: (dataDir, id) => {
    const dir = join(dataDir, 'domains', id);
    return [
      dir,
      join(dir, 'domain.json'),
      join(dir, 'run', 'token'),
      join(dir, 'rootfs'),
      join(dir, 'rootfs', 'server.mjs'),
      join(dir, 'logs', 'stdout.log'),
    ];
  },
});

describe('process driver', () => {
  const harness = new DriverHarness();
  const children: ReturnType<typeof spawn>[] = [];
  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children.length = 0;
    await harness.cleanup();
  });

  async function newDriver(dataDir?: string): Promise<ProcessDriver> {
    const d = harness.track(new ProcessDriver({}, { dataDir: dataDir ?? (await harness.dataDir()) }));
    await d.start();
    return d;
  }

  it('applies memory and CPU limits through cgroups, or says why not', async () => {
    const dataDir = await harness.dataDir();
    const driver = await newDriver(dataDir);
    const spec = serviceSpec(
      testInstance('limits'),
      {},
      { resources: { memoryBytes: 96 * 1024 * 1024, cpuMillis: 500 } },
    );
    const info = await driver.startDomain(spec);
    expect(info.limits).toBeDefined();
    if (!info.limits!.enforced) {
      // A host without usable cgroups: the reason must be there for the caller to show.
      expect(info.limits!.reason).toMatch(/\w+/);
      return;
    }
    const limitFile = await Cgroups.forDataDir(dataDir).memoryLimitFile(spec.id);
    expect((await readFile(limitFile!, 'utf8')).trim()).toBe(String(96 * 1024 * 1024));
    // The supervisor joins the cgroup itself, before it starts the service.
    const procsFile = join(limitFile!, '..', 'cgroup.procs');
    const joined = async () =>
      (await readFile(procsFile, 'utf8')).split('\n').map(Number).includes(info.pid!);
    expect(await waitUntil(joined, { timeoutMs: 5000 })).toBe(true);
  });

  it('kills a service that exceeds its memory limit, when limits are enforced', async () => {
    const driver = await newDriver();
    const spec = serviceSpec(
      testInstance('hog'),
      { HOG_MB: '400' },
      { resources: { memoryBytes: 64 * 1024 * 1024 } },
    );
    const started = await driver.startDomain(spec);
    if (!started.limits?.enforced) return; // nothing to enforce here; the test above checks the reason
    const info = await waitForState(driver, spec.id, ['crashed', 'stopped']);
    expect(info).toMatchObject({ state: 'crashed', signal: 'SIGKILL', exitCode: 137 });
  });

  it('keeps a domain running after the process that started it is SIGKILLed, and adopts it', async () => {
    const dataDir = await harness.dataDir();
    const spec = serviceSpec(testInstance('orphan'));
    const starter = spawn(
      process.execPath,
      [join(import.meta.dirname, 'fixtures', 'start-domain.ts'), dataDir, JSON.stringify(spec)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    children.push(starter);
    const [line] = (await once(createInterface({ input: starter.stdout! }), 'line')) as [string];
    const started = JSON.parse(line) as DomainInfo;
    expect(started.state).toBe('running');
    starter.kill('SIGKILL');
    await once(starter, 'exit');

    const url = `http://127.0.0.1:${started.endpoints[0].port}/`;
    await waitForBody(url, spec.instance.name, 15_000);
    const driver = await newDriver(dataDir);
    const [adopted] = await driver.list();
    expect(adopted).toMatchObject({
      id: spec.id,
      state: 'running',
      pid: started.pid,
      instance: spec.instance,
    });
    expect((await driver.startDomain(spec)).pid).toBe(started.pid);
    // The exit code is still known although nobody here is the service's parent.
    const stopped = await driver.stopDomain(spec.id, { graceMs: 5000 });
    expect(stopped).toMatchObject({ state: 'stopped', exitCode: 0 });
  });

  it('forces a service that ignores SIGTERM after the grace period', async () => {
    const driver = await newDriver();
    const spec = serviceSpec(testInstance('stubborn'), { IGNORE_TERM: '1' });
    const info = await driver.startDomain(spec);
    await waitForBody(`http://127.0.0.1:${info.endpoints[0].port}/`, spec.instance.name, 15_000);
    const stopped = await driver.stopDomain(spec.id, { graceMs: 300 });
    expect(stopped).toMatchObject({ state: 'stopped', signal: 'SIGKILL' });
    let out = '';
    for await (const c of driver.logs(spec.id)) out += c.data;
    expect(out).toContain('ignoring SIGTERM');
  });

  it('expands parameters, ports and instance fields into env, and passes PORT and XENOS_PORT_<NAME>', async () => {
    const driver = await newDriver();
    const spec = serviceSpec(
      testInstance('params'),
      { GREETING: 'hi-${params.who}-on-${port.http}-as-${instance.namespace}' },
      {
        parameters: { who: 'alice' },
      },
    );
    const info = await driver.startDomain(spec);
    const port = info.endpoints[0].port;
    const body = await waitForBody(`http://127.0.0.1:${port}/`, 'hi-', 15_000);
    expect(body.trim()).toBe(`hello ${spec.instance.name} hi-alice-on-${port}-as-test`);
    const env = await driver.exec(spec.id, [
      '/bin/sh',
      '-c',
      'echo "$PORT $XENOS_PORT_HTTP $XENOS_INSTANCE_UID"',
    ]);
    expect(env.stdout.trim()).toBe(`${port} ${port} ${spec.instance.uid}`);
  });

  it('runs exec health checks in the domain directory', async () => {
    const driver = await newDriver();
    const spec = serviceSpec(testInstance('exec'));
    const info = await driver.startDomain(spec);
    const target = healthTargetFor(driver, info);
    // Right after the start: the check must wait until the sandbox is set up (bwrap reports its pid 1
    // before making the mounts). The default 1 s timeout is Kubernetes'; a sandboxed shell on a loaded CI
    // machine can need more, and this test is about where the check runs, not how long it may take.
    const timeoutSeconds = 20;
    expect(
      await probeHealth(
        { exec: { command: ['/bin/sh', '-c', 'test -f server.mjs'] }, timeoutSeconds },
        target,
      ),
    ).toEqual({ ok: true, message: 'exec /bin/sh: exit 0' });
    const bad = await probeHealth(
      { exec: { command: ['/bin/sh', '-c', 'echo nope >&2; exit 4'] }, timeoutSeconds },
      target,
    );
    expect(bad).toEqual({ ok: false, message: 'exec /bin/sh: exit 4: nope' });
  });

  it('refuses a working dir outside the domain, naming the field', async () => {
    const driver = await newDriver();
    const spec = serviceSpec(testInstance('escape'));
    spec.process!.workingDir = '../..';
    await expect(driver.startDomain(spec)).rejects.toThrow(
      /spec\.process\.workingDir: \.\.\/\.\. leaves the domain's files/,
    );
  });

  // Moving between hosts is the driver contract's (migration-contract.ts, over the cluster transport).
  it('refuses to move a running process live', async () => {
    const source = await newDriver();
    const spec = serviceSpec(testInstance('live'));
    await source.startDomain(spec);
    await expect(
      source.migrateOut(spec.id, { open: () => Promise.reject(new Error('unused')) }, { mode: 'live' }),
    ).rejects.toThrow(/cannot migrate a running process live/);
    expect((await source.inspect(spec.id))?.state).toBe('running');
  });

  it('removes the domain directory on destroy', async () => {
    const dataDir = await harness.dataDir();
    const driver = await newDriver(dataDir);
    const spec = serviceSpec(testInstance('files'));
    await driver.startDomain(spec);
    const dir = join(dataDir, 'domains', spec.id);
    await access(join(dir, 'rootfs', 'server.mjs'));
    await driver.destroy(spec.id);
    await expect(access(dir)).rejects.toThrow(/ENOENT/);
    const limitFile = await Cgroups.forDataDir(dataDir).memoryLimitFile(spec.id);
    if (limitFile) await expect(access(join(limitFile, '..'))).rejects.toThrow(/ENOENT/);
  });
});
