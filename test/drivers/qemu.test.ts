// The QEMU driver with real guests (TCG here): the driver contract with the demo guest (it answers
// GET /name with its instance name, says `ready` on its console, powers off on the ACPI button, panics
// with xenos.crash=1), then what is QEMU's own: the disks as named block nodes on qcow2 overlays that
// leave the image untouched, stats of the QEMU process, a polite stop over the QMP connection a restarted
// driver makes again, the force after the grace period for a guest that ignores the power button, and
// what the QEMU process itself can reach in its sandbox. Guests boot one at a time (2 shared cores):
// generous timeouts.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { DomainInfo, DomainSpec, InstanceIdentity } from '../../src/drivers/driver.ts';
import { Cgroups } from '../../src/drivers/process/cgroup.ts';
import { probeQemu } from '../../src/drivers/qemu/probe-qemu.ts';
import { QemuDriver } from '../../src/drivers/qemu/qemu-driver.ts';
import { demoGuestSpec } from '../guest-client.ts';
import { guestImageDir } from '../guest-image.ts';
import { driverPerTest, httpGet, runDriverContract, testInstance, waitForBody } from './driver-contract.ts';

const run = promisify(execFile);
const BOOT_MS = 60_000;
const MiB = 1024 * 1024;

const qemu = await probeQemu();
const guestDir = qemu.usable ? await guestImageDir() : '';

function guestSpec(instance: InstanceIdentity, extra: Partial<DomainSpec> = {}, cmdline = ''): DomainSpec {
  return demoGuestSpec(guestDir, instance, extra, cmdline);
}

// Each data dir its own cgroup subtree: the migration cases run two drivers — two hosts — on one machine,
// and a domain's cgroup is named by its id, the same on both.
function makeDriver(dataDir: string): QemuDriver {
  const subtree = `xenos-test-${createHash('sha256').update(dataDir).digest('hex').slice(0, 8)}`;
  return new QemuDriver({}, { dataDir, defaultGraceMs: 30_000, cgroups: new Cgroups({ subtree }) });
}

/** Live: the guest's memory moves, so its in-memory request counter (with its boot id) is the mark. */
const marks = new Map<string, { boot: string; count: number }>();
async function guestCounter(info: DomainInfo): Promise<{ boot: string; count: number } | undefined> {
  const r = await httpGet(`http://${info.endpoints[0].address}:${info.endpoints[0].port}/`);
  const m = r?.body.match(/boot=(\S+) count=(\d+)/);
  return m ? { boot: m[1], count: Number(m[2]) } : undefined;
}

describe.skipIf(!qemu.usable)('QEMU driver', () => {
  runDriverContract('qemu', {
    makeDriver,
    serverSpec: (instance) => guestSpec(instance),
    namePath: '/name',
    crashSpec: (instance) => guestSpec(instance, {}, ' xenos.crash=1'),
    // pvpanic + `-action panic=exit-failure`: QEMU exits 1 when the guest kernel panics.
    crashExitCode: 1,
    // The guest logs nothing per request; its console shows the shutdown the ACPI power button starts.
    newLogOutput: async (driver, info) => {
      await driver.stopDomain(info.id, { graceMs: 30_000 });
      return { contains: 'going down' };
    },
    bootTimeoutMs: BOOT_MS,
    testTimeoutMs: 4 * BOOT_MS,
    migration: {
      mode: 'live',
      mark: async (_driver, info, value) => {
        const now = await guestCounter(info);
        if (!now) throw new Error('the guest did not answer GET /');
        marks.set(value, now);
      },
      read: async (_driver, info) => {
        const now = await guestCounter(info);
        for (const [value, then] of marks) {
          if (now && now.boot === then.boot && now.count > then.count) return value;
        }
        return undefined;
      },
    },
  });

  describe('what is QEMU-specific', { timeout: 4 * BOOT_MS }, () => {
    let dataDir: string;
    let driver: QemuDriver;
    const harness = driverPerTest(makeDriver, (d, dir) => {
      driver = d;
      dataDir = dir;
    });

    it('gives each disk a named block node on a qcow2 overlay, leaves the image untouched, reports stats, reconnects QMP after a restart', async () => {
      const image = join(guestDir, 'disk.img');
      const before = createHash('sha256')
        .update(await readFile(image))
        .digest('hex');
      const spec = guestSpec(testInstance('disks'), {
        disks: [
          { name: 'root', source: 'image' },
          { name: 'scratch', source: 'empty', size: '32Mi' },
        ],
        token: 'disk-token',
      });
      const started = Date.now();
      const info = await driver.startDomain(spec);
      const url = `http://${info.endpoints[0].address}:${info.endpoints[0].port}`;
      await waitForBody(`${url}/name`, spec.instance.name, BOOT_MS);
      console.log(`boot to ready through the driver (TCG, 128 MiB): ${Date.now() - started} ms`);
      expect(await waitForBody(`${url}/`, 'count=', 10_000)).toMatch(/^boot=[0-9a-f-]{36} count=1\n$/);

      expect(info).toMatchObject({
        driver: 'qemu',
        disk: { mode: 'Qcow2Overlay' },
        limits: { enforced: true, mechanism: expect.stringMatching(/^qemu -m 131064K -smp 1/) },
        isolation: { sandboxed: true },
      });
      expect(info.endpoints[0]).toMatchObject({ guestPort: 80, protocol: 'TCP' });
      const qmp = await driver.qmp(spec.id);
      const nodes = await qmp.execute<
        { 'node-name': string; drv: string; ro: boolean; backing_file?: string }[]
      >('query-named-block-nodes', { flat: true });
      const byName = new Map(nodes.map((n) => [n['node-name'], n]));
      expect(byName.get('disk-root')).toMatchObject({
        drv: 'qcow2',
        ro: false,
        backing_file: '/image/disk.img',
      });
      expect(byName.get('disk-root-base')).toMatchObject({ drv: 'raw', ro: true });
      expect(byName.get('disk-scratch')).toMatchObject({ drv: 'qcow2', ro: false });
      expect(byName.get('disk-scratch')?.backing_file).toBeUndefined();

      const stats = await driver.stats(spec.id);
      expect(stats?.cpuSeconds).toBeGreaterThan(0);
      expect(stats?.memoryBytes).toBeGreaterThan(32 * MiB);

      // A restarted xenosd (a new driver; the old one's monitor connection is gone) reconnects QMP and
      // stops the guest politely through it: the guest powers off, QEMU exits 0.
      await driver.stop();
      expect(qmp.connected).toBe(false);
      const restarted = harness.track(makeDriver(dataDir));
      await restarted.start();
      const status = await (await restarted.qmp(spec.id)).execute<{ status: string }>('query-status');
      expect(status.status).toBe('running');
      const stopped = await restarted.stopDomain(spec.id, { graceMs: 30_000 });
      expect(stopped).toMatchObject({ state: 'stopped', exitCode: 0 });
      expect(stopped?.signal).toBeUndefined();

      // The guest wrote to its disk (the request log); only the overlay changed.
      const after = createHash('sha256')
        .update(await readFile(image))
        .digest('hex');
      expect(after).toBe(before);
      const overlay = join(dataDir, 'vms', spec.id, 'vm', 'disks', 'root.qcow2');
      expect((await stat(overlay)).size).toBeGreaterThan(0);
    });

    it('runs QEMU as the domain uid with no privileges, seccomp on, and its own files only', async () => {
      const secret = join(dataDir, 'admin.token');
      await writeFile(secret, 'admin-secret', { mode: 0o600 });
      const victim = guestSpec(testInstance('victim'), { token: 'victim-token' });
      await driver.prepare(victim);
      const spec = guestSpec(testInstance('probe'), { token: 'probe-token' });
      const info = await driver.startDomain(spec);
      await waitForBody(`http://127.0.0.1:${info.endpoints[0].port}/name`, spec.instance.name, BOOT_MS);
      const pid = await driver.qemuPidOf(spec.id);
      expect(pid).toBeTypeOf('number');
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const field = (name: string) => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)?.[1];
      const uid = info.isolation?.uid;
      if (process.getuid?.() === 0) {
        expect(uid).toBeGreaterThanOrEqual(2_000_000_000);
        expect(field('Uid')?.split(/\s+/)).toEqual([String(uid), String(uid), String(uid), String(uid)]);
        expect(field('CapEff')).toBe('0000000000000000');
      }
      expect(field('NoNewPrivs')).toBe('1');
      expect(field('Seccomp')).toBe('2');
      // What QEMU itself can reach: its mount namespace, its uid.
      const vmDir = join(dataDir, 'vms', spec.id);
      const victimDir = join(dataDir, 'vms', victim.id);
      const probe = [
        secret,
        dataDir,
        join(vmDir, 'domain.json'),
        join(vmDir, 'run', 'token'),
        join(victimDir, 'vm', 'disks', 'root.qcow2'),
        join(victimDir, 'domain.json'),
        '/etc/shadow',
        `/proc/${process.pid}/environ`,
      ];
      const script = [
        ...probe.map((p) => `cat ${p} >/dev/null 2>&1 && echo "read ${p}" || echo "denied ${p}"`),
        'cat /domain/disks/root.qcow2 >/dev/null 2>&1 && echo "read own disk" || echo "denied own disk"',
        'cat /image/disk.img >/dev/null 2>&1 && echo "read image" || echo "denied image"',
        'touch /image/pwned 2>/dev/null && echo "wrote image" || echo "denied write image"',
        'touch /usr/pwned 2>/dev/null && echo "wrote usr" || echo "denied write usr"',
        // Its monitor socket is sealed: it cannot be swapped for a link to another guest's monitor.
        'mv /domain/monitor/qmp.sock /domain/monitor/old 2>/dev/null && echo "moved monitor" || echo "denied move monitor"',
        'ln -s /x /domain/monitor/qmp2.sock 2>/dev/null && echo "linked monitor" || echo "denied link monitor"',
        'ls /',
      ].join('\n');
      const asQemu =
        process.getuid?.() === 0
          ? [
              'nsenter',
              `--target=${pid}`,
              '--mount',
              '--',
              'setpriv',
              `--reuid=${uid}`,
              `--regid=${uid}`,
              '--clear-groups',
              '--',
              'sh',
              '-c',
              script,
            ]
          : [
              'nsenter',
              `--target=${pid}`,
              '--user',
              '--mount',
              '--preserve-credentials',
              '--',
              'sh',
              '-c',
              script,
            ];
      const { stdout } = await run(asQemu[0], asQemu.slice(1), { timeout: 20_000 });
      for (const p of probe) expect(stdout, p).toContain(`denied ${p}`);
      expect(stdout).toContain('read own disk');
      expect(stdout).toContain('read image');
      expect(stdout).toContain('denied write image');
      expect(stdout).toContain('denied write usr');
      if (process.getuid?.() === 0) {
        expect(stdout).toContain('denied move monitor');
        expect(stdout).toContain('denied link monitor');
        const monitorDir = await stat(join(vmDir, 'vm', 'monitor'));
        expect([monitorDir.uid, monitorDir.mode & 0o777]).toEqual([0, 0o755]);
      }
      const root = stdout.split('\n').filter((l) => /^[a-z0-9]+$/.test(l));
      expect(root).not.toContain('root');
      expect(root).not.toContain('home');
      // The token: a file of the domain's uid alone, handed to the guest over fw_cfg, never in the record.
      const token = join(vmDir, 'run', 'token');
      const st = await stat(token);
      expect(st.mode & 0o777).toBe(0o400);
      if (process.getuid?.() === 0) expect(st.uid).toBe(uid);
      expect(await readFile(join(vmDir, 'domain.json'), 'utf8')).not.toContain('probe-token');
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      expect(cmdline).toContain('opt/xenos/token');
      expect(cmdline).not.toContain(dataDir);
    });

    it('forces a guest that does not answer the power button once the grace period is over', async () => {
      const spec = guestSpec(testInstance('deaf'));
      const info = await driver.startDomain(spec);
      await waitForBody(`http://127.0.0.1:${info.endpoints[0].port}/name`, spec.instance.name, BOOT_MS);
      // A paused guest runs no ACPI handler: the power button is pressed and nothing happens.
      await (await driver.qmp(spec.id)).execute('stop');
      const started = Date.now();
      const stopped = await driver.stopDomain(spec.id, { graceMs: 1500 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
      expect(stopped).toMatchObject({ state: 'stopped', signal: 'SIGKILL' });
      expect(stopped?.message).toMatch(/forced with SIGKILL after the grace period/);
      expect(await driver.qemuPidOf(spec.id)).toBeUndefined();
    });
  });
});
