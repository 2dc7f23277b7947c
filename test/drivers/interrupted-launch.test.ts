// A launch the coordinator did not live to record: xenosd killed after the driver spawned a domain's
// supervisor but before it wrote the pid into the record. The state that leaves behind — the launch mark
// and a running supervisor session no record names — is set up here with real processes; the driver must
// kill that stray before it starts, stops or destroys the domain (never two copies, none orphaned), and
// must never touch the run its record does name. The crash trials (test/daemon/crash-trials.test.ts)
// find the same window with real kill -9 of xenosd.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { type DomainSpec, domainIdFor } from '../../src/drivers/driver.ts';
import { ProcessDriver } from '../../src/drivers/process/process-driver.ts';
import { waitUntil } from '../../src/drivers/wait-until.ts';
import { alive } from '../process-alive.ts';
import { testInstance } from './driver-contract.ts';

let dataDir: string;
let image: string;
let driver: ProcessDriver;
const strays: ChildProcess[] = [];

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'xenos-interrupted-'));
  image = join(dataDir, 'image');
  rmSync(image, { recursive: true, force: true });
  driver = new ProcessDriver({}, { dataDir, cgroups: false, defaultGraceMs: 500 });
});
afterEach(async () => {
  for (const d of await driver.list()) await driver.destroy(d.id);
  for (const s of strays.splice(0)) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

function spec(name: string): DomainSpec {
  const instance = testInstance(name);
  return {
    id: domainIdFor(instance),
    instance,
    image: { path: join(import.meta.dirname, 'fixtures', 'http-service') },
    process: { command: ['sleep', '300'] },
  };
}

/** What an interrupted launch leaves: the mark, and a detached supervisor session (its own session
 *  leader, its arguments naming files of the domain's directory) that no record names. */
function interruptedLaunch(s: DomainSpec): ChildProcess {
  const dir = join(dataDir, 'domains', s.id);
  writeFileSync(join(dir, 'launching'), 'then\n');
  const stray = spawn('/bin/sh', ['-c', 'sleep 300 & wait', 'xenos-supervisor', join(dir, 'run', 'exit')], {
    detached: true,
    stdio: 'ignore',
  });
  strays.push(stray);
  return stray;
}

const gone = (pid: number) => waitUntil(() => !alive(pid), { timeoutMs: 5_000 });

it('kills the stray of an interrupted first launch before starting the domain: one copy runs', async () => {
  const s = spec('first');
  await driver.prepare(s);
  const stray = interruptedLaunch(s);
  const started = await driver.startDomain(s);
  expect(await gone(stray.pid!)).toBe(true);
  expect(started.state).toBe('running');
  expect(started.pid).not.toBe(stray.pid);
  expect(() => statSync(join(dataDir, 'domains', s.id, 'launching'))).toThrow();
});

it('kills the stray when the domain is stopped or destroyed instead', async () => {
  const a = spec('stopped');
  await driver.prepare(a);
  const strayA = interruptedLaunch(a);
  await driver.stopDomain(a.id);
  expect(await gone(strayA.pid!)).toBe(true);
  const b = spec('destroyed');
  await driver.prepare(b);
  const strayB = interruptedLaunch(b);
  await driver.destroy(b.id);
  expect(await gone(strayB.pid!)).toBe(true);
});

it('kills the strays of a dead coordinator when the driver starts, before anything asks for the domain', async () => {
  // An instance that is Halted or gone by the time xenosd is back: nothing would start or stop it again.
  const s = spec('halted');
  await driver.prepare(s);
  const stray = interruptedLaunch(s);
  const restarted = new ProcessDriver({}, { dataDir, cgroups: false });
  await restarted.start();
  expect(await gone(stray.pid!)).toBe(true);
  expect((await restarted.inspect(s.id))?.state).toBe('prepared');
});

it('never touches the run its record names, nor anything while no launch is marked', async () => {
  const s = spec('recorded');
  const running = await driver.startDomain(s);
  // Killed after the record was written but before the mark was cleared: the recorded run is the domain.
  writeFileSync(join(dataDir, 'domains', s.id, 'launching'), 'then\n');
  await new ProcessDriver({}, { dataDir, cgroups: false }).start();
  expect((await driver.startDomain(s)).pid).toBe(running.pid);
  expect(alive(running.pid!)).toBe(true);
  // No mark: a look-alike session is not the driver's to judge.
  const other = spec('unmarked');
  await driver.prepare(other);
  const lookalike = interruptedLaunch(other);
  rmSync(join(dataDir, 'domains', other.id, 'launching'));
  await driver.startDomain(other);
  expect(alive(lookalike.pid!)).toBe(true);
});
