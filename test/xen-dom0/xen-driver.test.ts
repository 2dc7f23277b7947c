// The Xen driver on a real Xen host (run inside dom0 by test/drivers/xen/dom0-suite.test.ts): the driver
// contract with the demo guest as PVH domains (it answers GET /name with its instance name, says `ready`
// on its console, powers off on `xl shutdown`, panics with xenos.crash=1, which Xen records as shutdown
// reason 3, crash), then what is Xen's own: the domain xl runs is the one the config asked for, the guest
// got its address from the driver's DHCP on the bridge, the token is in its xenstore directory and
// readable by it alone, and the port relay comes back for a running guest when a new driver starts.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DomainSpec, InstanceIdentity } from '../../src/drivers/driver.ts';
import { XenDriver } from '../../src/drivers/xen/xen-driver.ts';
import { parseXlListLong } from '../../src/drivers/xen/xl-list.ts';
import {
  driverPerTest,
  httpGet,
  runDriverContract,
  testInstance,
  waitForBody,
} from '../drivers/driver-contract.ts';
import { demoGuestSpec } from '../guest-client.ts';

const BOOT_MS = 120_000;
const MiB = 1024 * 1024;
const guestDir = process.env.XENOS_GUEST_DIR;
if (!guestDir) throw new Error('XENOS_GUEST_DIR must name the demo guest image (the dom0 suite sets it)');

function guestSpec(instance: InstanceIdentity, cmdline = ''): DomainSpec {
  return demoGuestSpec(guestDir!, instance, {}, cmdline);
}

function makeDriver(dataDir: string): XenDriver {
  return new XenDriver({}, { dataDir, defaultGraceMs: 60_000 });
}

runDriverContract('xen', {
  makeDriver,
  serverSpec: (instance) => guestSpec(instance),
  namePath: '/name',
  crashSpec: (instance) => guestSpec(instance, ' xenos.crash=1'),
  // Xen's shutdown reason for a guest whose kernel panicked: SHUTDOWN_crash.
  crashExitCode: 3,
  // The guest logs nothing per request; its console shows the shutdown `xl shutdown` starts.
  newLogOutput: async (driver, info) => {
    await driver.stopDomain(info.id, { graceMs: 60_000 });
    return { contains: 'going down' };
  },
  bootTimeoutMs: BOOT_MS,
  testTimeoutMs: 4 * BOOT_MS,
  // Under TCG inside TCG beside two more Xen hosts (CI), the guest's power-off took longer than 5 s.
  stopGraceMs: 60_000,
});

describe('what is Xen-specific', { timeout: 4 * BOOT_MS }, () => {
  let dataDir: string;
  let driver: XenDriver;
  const harness = driverPerTest(makeDriver, (d, dir) => {
    driver = d;
    dataDir = dir;
  });

  it('runs the domain its config asks for, on the bridge with its DHCP address, the token readable by it alone', async () => {
    const spec = { ...guestSpec(testInstance('xen')), token: 'xen-token' };
    const info = await driver.startDomain(spec);
    const url = `http://${info.endpoints[0].address}:${info.endpoints[0].port}`;
    await waitForBody(`${url}/name`, spec.instance.name, BOOT_MS);
    expect(info).toMatchObject({
      driver: 'xen',
      state: 'running',
      disk: { mode: 'Qcow2Overlay' },
      limits: { enforced: true, mechanism: 'xen pvh memory=128M vcpus=1' },
      isolation: { sandboxed: true },
    });
    expect(info.endpoints[0]).toMatchObject({ guestPort: 80, protocol: 'TCP' });

    const [domain] = parseXlListLong(execFileSync('xl', ['list', '-l', spec.id], { encoding: 'utf8' }));
    expect(domain.domid).toBe(info.pid);
    const config = domain.config as unknown as {
      c_info: { name: string; type: string };
      b_info: { max_memkb: number };
      disks: { format: string; pdev_path: string }[];
      nics: { bridge: string; mac: string }[];
    };
    expect(config.c_info).toMatchObject({ name: spec.id, type: 'pvh' });
    expect(config.b_info.max_memkb).toBe(128 * 1024);
    expect(config.disks[0]).toMatchObject({ format: 'qcow2' });
    expect(config.disks[0].pdev_path).toContain(`${dataDir}/xen/${spec.id}/vm/disks/root.qcow2`);
    expect(config.nics[0].bridge).toBe(driver.network.bridge);

    // The guest took the address the driver gave its MAC: it answers there, on the bridge, from dom0.
    const address = driver.network.addressOf(`${dataDir}/xen/${spec.id}`);
    expect(address).toMatch(new RegExp(`^${driver.network.subnet.replaceAll('.', '\\.')}\\.\\d+$`));
    expect((await httpGet(`http://${address}/name`))?.body).toContain(spec.instance.name);

    // The token: in the guest's own xenstore directory, dom0's, readable by this guest and no other.
    const key = `/local/domain/${info.pid}/xenos/token`;
    expect(execFileSync('xenstore-read', [key], { encoding: 'utf8' }).trim()).toBe('xen-token');
    expect(
      execFileSync('xenstore-ls', ['-p', `/local/domain/${info.pid}/xenos`], { encoding: 'utf8' }),
    ).toMatch(new RegExp(`token = "xen-token"[ .]*\\(n0,r${info.pid}\\)`));
    expect(readFileSync(`${dataDir}/xen/${spec.id}/domain.json`, 'utf8')).not.toContain('xen-token');

    // A restarted xenosd relays the running guest's port again.
    await driver.stop();
    expect(await httpGet(`${url}/name`)).toBeUndefined();
    const again = harness.track(makeDriver(dataDir));
    await again.start();
    expect((await httpGet(`${url}/name`))?.body).toContain(spec.instance.name);
    const stats = await again.stats(spec.id);
    expect(stats?.cpuSeconds).toBeGreaterThan(0);
    expect(stats?.memoryBytes).toBe(128 * MiB);
    // Its disks are not made again from another image while the domain runs (xl says it does).
    await expect(
      again.prepare({ ...spec, image: { ...spec.image, digest: `sha256:${'b'.repeat(64)}` } }),
    ).rejects.toThrow('stop it before changing its image');
    expect((await again.stopDomain(spec.id, { graceMs: 60_000 }))?.state).toBe('stopped');
  });
});
