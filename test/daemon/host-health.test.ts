// Host health (src/daemon/host-health.ts): the pressure conditions from measured figures against byte and
// share bounds, and the health command run for real — exit 0, a failing exit with its output, a timeout —
// with a change reported once and a message kept while its condition stays as it is.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HostHealth, healthConditions } from '../../src/daemon/host-health.ts';
import { parseOptions } from '../../src/daemon/options.ts';
import { silentLogger } from '../../src/log/logger.ts';

const MI = 1024 * 1024;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('healthConditions', () => {
  it('MemoryPressure and DiskPressure against bytes and shares; the command as HealthCheckFailing', () => {
    const measure = {
      memory: { free: 90 * MI, total: 4096 * MI },
      disk: { free: 200 * MI, total: 1000 * MI },
      command: { ok: false, output: 'exit 2: raid degraded' },
    };
    const cs = healthConditions(measure, {
      minFreeMemory: { bytes: 100 * MI },
      minFreeDisk: { percent: 10 },
      command: 'check-raid',
    });
    expect(cs).toEqual([
      {
        type: 'MemoryPressure',
        status: 'True',
        reason: 'LowMemory',
        message: '90Mi of 4Gi memory free (at least 100Mi wanted)',
      },
      expect.objectContaining({ type: 'DiskPressure', status: 'False', reason: 'EnoughDisk' }),
      {
        type: 'HealthCheckFailing',
        status: 'True',
        reason: 'HealthCommandFailed',
        message: '--health-command "check-raid": exit 2: raid degraded',
      },
    ]);
    const tight = healthConditions(measure, { minFreeMemory: { percent: 1 }, minFreeDisk: { percent: 25 } });
    expect(tight.map((c) => `${c.type}=${c.status}`)).toEqual(['MemoryPressure=False', 'DiskPressure=True']);
  });
});

describe('HostHealth', () => {
  it('runs the command: a change is reported once, the message stays while the condition does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenos-health-'));
    dirs.push(dir);
    const flag = join(dir, 'sick');
    let changes = 0;
    const health = new HostHealth(
      { log: silentLogger.root, onChange: () => changes++ },
      {
        dataDir: dir,
        minFreeMemory: { bytes: 1 },
        minFreeDisk: { bytes: 1 },
        command: `if [ -e ${flag} ]; then cat ${flag}; exit 3; fi`,
        intervalMs: 60_000,
      },
    );
    const failing = () => health.conditions.find((c) => c.type === 'HealthCheckFailing');
    await health.check();
    expect(failing()).toMatchObject({ status: 'False', reason: 'HealthCommandPassed' });
    expect(health.conditions.map((c) => c.status)).toEqual(['False', 'False', 'False']);
    expect(changes).toBe(1);
    await health.check();
    expect(changes).toBe(1);

    writeFileSync(flag, 'disk   errors\n');
    await health.check();
    expect(failing()).toMatchObject({
      status: 'True',
      message: expect.stringMatching(/: exit 3: disk errors$/),
    });
    expect(changes).toBe(2);
    writeFileSync(flag, 'other words');
    await health.check();
    expect(failing()?.message).toMatch(/disk errors$/);
    expect(changes).toBe(2);
    await health.stop();
  });

  it('a command that does not exit in time fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenos-health-'));
    dirs.push(dir);
    const health = new HostHealth(
      { log: silentLogger.root, onChange: () => {} },
      {
        dataDir: dir,
        minFreeMemory: { bytes: 1 },
        minFreeDisk: { bytes: 1 },
        command: 'sleep 5',
        intervalMs: 60_000,
        commandTimeoutMs: 200,
      },
    );
    await health.check();
    expect(health.conditions.find((c) => c.type === 'HealthCheckFailing')).toMatchObject({
      status: 'True',
      message: '--health-command "sleep 5": no exit within 200 ms',
    });
  });
});

describe('xenosd flags', () => {
  const parse = (...args: string[]) => parseOptions(['--data-dir', '/tmp/x', ...args], () => {})!;

  it('measure by default, drain only when asked; bounds as sizes or shares, bad ones refused', () => {
    const plain = parse();
    expect(plain.health).toEqual({
      command: undefined,
      intervalMs: 10_000,
      minFreeMemory: { bytes: 100 * MI },
      minFreeDisk: { percent: 10 },
    });
    expect(plain.autoDrainAfterMs).toBeUndefined();
    const asked = parse(
      '--auto-drain',
      '--auto-drain-after',
      '5s',
      '--min-free-disk',
      '2Gi',
      '--health-command',
      'true',
    );
    expect(asked.autoDrainAfterMs).toBe(5000);
    expect(asked.health).toMatchObject({ command: 'true', minFreeDisk: { bytes: 2048 * MI } });
    expect(() => parse('--min-free-disk', '120%')).toThrow(/--min-free-disk "120%": expected a size/);
    expect(() => parse('--min-free-memory', 'lots')).toThrow(/--min-free-memory "lots"/);
    expect(() => parse('--health-command', ' ')).toThrow(/--health-command must not be empty/);
  });
});
