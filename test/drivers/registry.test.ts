// Driver selection on this host: explicit names, auto-detection with reasons for what was not chosen,
// and honest errors for drivers this host cannot run.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DriverUnavailableError } from '../../src/drivers/errors.ts';
import { DRIVER_CHOICES, probeQemu, selectDriver } from '../../src/drivers/registry.ts';

describe('selectDriver', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'xenos-registry-'));
  });
  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  it('lists the choices', () => {
    expect(DRIVER_CHOICES).toEqual(['process', 'qemu', 'xen', 'auto']);
  });

  it('gives the process driver by name', async () => {
    const { driver, notChosen } = await selectDriver('process', { dataDir });
    expect(driver.name).toBe('process');
    expect(notChosen).toEqual([]);
  });

  it('says plainly why xen cannot be used off a Xen host (test/xen-dom0/ picks it in a dom0)', async () => {
    const pending = selectDriver('xen', { dataDir });
    await expect(pending).rejects.toThrow(DriverUnavailableError);
    await expect(selectDriver('xen', { dataDir })).rejects.toThrow(
      'driver "xen" cannot be used on this host: not running under Xen (no /proc/xen/capabilities)',
    );
  });

  it('gives the QEMU driver by name where QEMU is installed, with TCG when KVM is not usable', async () => {
    const probe = await probeQemu();
    if (!probe.usable) {
      await expect(selectDriver('qemu', { dataDir })).rejects.toThrow(probe.reason);
      return;
    }
    const { driver } = await selectDriver('qemu', { dataDir });
    expect(driver.name).toBe('qemu');
    await driver.start();
    const accel = driver.hostConditions?.().find((c) => c.type === 'GuestsHardwareAccelerated');
    expect(accel?.reason).toBe(probe.accel === 'kvm' ? 'KVM' : 'TCG');
    await driver.stop();
  });

  it('rejects an unknown name with the choices', async () => {
    await expect(selectDriver('vmware' as 'auto', { dataDir })).rejects.toThrow(
      'driver "vmware" cannot be used on this host: unknown driver; choose one of process, qemu, xen, auto',
    );
  });

  it('auto falls back to process here and says why xen and qemu were not taken', async () => {
    const { driver, notChosen } = await selectDriver('auto', { dataDir });
    expect(driver.name).toBe('process');
    expect(notChosen).toHaveLength(2);
    expect(notChosen[0]).toMatch(/^xen: /);
    expect(notChosen[1]).toMatch(/^qemu: /);
  });

  it('reports a missing QEMU binary as not installed', async () => {
    expect(await probeQemu({ binary: 'qemu-system-none-such' })).toEqual({
      usable: false,
      reason: 'qemu-system-none-such is not installed (not on PATH)',
    });
  });
});
