// The process driver's sandbox with real domains, beyond the contract: without bubblewrap a domain does not
// start and says why (and the Host facts say so), --unsafe-no-sandbox runs it anyway and says that; each
// domain gets its own uid, owns its rootfs and token and nothing else, and its record is private and holds
// no token; starts at once on one driver and on two drivers (two xenosd) never share a port or a uid.

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DomainSpec, InstanceIdentity } from '../../../src/drivers/driver.ts';
import { domainIdFor } from '../../../src/drivers/driver.ts';
import { SandboxUnavailableError } from '../../../src/drivers/errors.ts';
import { ProcessDriver } from '../../../src/drivers/process/process-driver.ts';
import { DriverHarness, testInstance, waitForBody } from '../driver-contract.ts';

const IMAGE = join(import.meta.dirname, '..', 'fixtures', 'http-service');
const ROOT = process.getuid?.() === 0;

function spec(instance: InstanceIdentity, token?: string): DomainSpec {
  return {
    id: domainIdFor(instance),
    instance,
    image: { path: IMAGE, digest: 'sha256:test-http-service' },
    process: { command: ['node', 'server.mjs'] },
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    token,
  };
}

describe('process driver sandbox', () => {
  const harness = new DriverHarness();
  afterEach(() => harness.cleanup());

  async function driver(
    init: Partial<ConstructorParameters<typeof ProcessDriver>[1]> = {},
    dataDir?: string,
  ) {
    const d = harness.track(
      new ProcessDriver({}, { dataDir: dataDir ?? (await harness.dataDir()), ...init }),
    );
    await d.start();
    return d;
  }

  it('does not start a domain without bubblewrap, says what to do, and the host says so', async () => {
    const d = await driver({ sandbox: { bwrap: '/nonexistent/bwrap' } });
    expect(d.hostConditions()[0]).toMatchObject({
      type: 'DomainsSandboxed',
      status: 'False',
      reason: 'SandboxUnavailable',
    });
    const s = spec(testInstance('nobwrap'));
    const err = await d.startDomain(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxUnavailableError);
    expect(err).toMatchObject({ code: 'SandboxUnavailable' });
    expect((err as Error).message).toMatch(/\/nonexistent\/bwrap is not installed.*npm run setup/);
    expect((await d.inspect(s.id))?.state).toBe('prepared');
  });

  it('runs a domain unsandboxed only when told to, and says so', async () => {
    const d = await driver({ sandbox: false });
    expect(d.hostConditions()[0]).toMatchObject({ status: 'False', reason: 'UnsafeNoSandbox' });
    const info = await d.startDomain(spec(testInstance('unsafe')));
    expect(info.isolation).toMatchObject({ sandboxed: false });
    await waitForBody(`http://127.0.0.1:${info.endpoints[0].port}/`, 'unsafe', 15_000);
  });

  it('gives each domain its own uid, its rootfs and token, and keeps its record private and tokenless', async () => {
    const dataDir = await harness.dataDir();
    const d = await driver({}, dataDir);
    expect(d.hostConditions()[0]).toMatchObject({ status: 'True', reason: 'Bubblewrap' });
    const a = await d.startDomain(spec(testInstance('own-a'), 'token-a'));
    const b = await d.startDomain(spec(testInstance('own-b'), 'token-b'));
    expect(a.isolation?.sandboxed).toBe(true);
    expect(a.isolation?.uid).not.toBe(b.isolation?.uid);
    const dir = join(dataDir, 'domains', a.id);
    const record = await readFile(join(dir, 'domain.json'), 'utf8');
    expect(record).not.toContain('token-a');
    expect((await stat(join(dir, 'domain.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const token = await stat(join(dir, 'run', 'token'));
    expect(token.mode & 0o777).toBe(0o400);
    if (ROOT) {
      expect(a.isolation!.uid).toBeGreaterThanOrEqual(2_000_000_000);
      expect(token.uid).toBe(a.isolation!.uid);
      expect((await stat(join(dir, 'rootfs', 'server.mjs'))).uid).toBe(a.isolation!.uid);
      expect((await stat(join(dir, 'logs'))).uid).toBe(0);
    }
    // A restart keeps the uid; a new driver on the same data dir (a restarted xenosd) too.
    await d.stopDomain(a.id, { graceMs: 5000 });
    const again = await (await driver({}, dataDir)).startDomain(spec(a.instance, 'token-a'));
    expect(again.isolation?.uid).toBe(a.isolation?.uid);
  });

  it('never gives one port or uid to two domains started at once, on one driver or on two', async () => {
    const one = await driver();
    const two = await driver();
    const starts = Array.from({ length: 6 }, (_, i) =>
      (i % 3 === 2 ? two : one).startDomain(spec(testInstance(`burst-${i}`))),
    );
    const infos = await Promise.all(starts);
    const ports = infos.map((i) => i.endpoints[0].port);
    expect(new Set(ports).size).toBe(ports.length);
    const uids = infos.map((i) => i.isolation?.uid);
    if (ROOT) expect(new Set(uids).size).toBe(uids.length);
    for (const info of infos) {
      await waitForBody(`http://127.0.0.1:${info.endpoints[0].port}/`, info.instance.name, 20_000);
    }
  });
});
