// One owner per data dir, and a private data dir, with real xenosd processes: a second xenosd on the same
// dir exits 1 naming the holder's pid and changes nothing; the lock goes with its holder however it dies
// (kill -9 included), so a restart is never blocked; a holder record that names a recycled pid is never
// taken for the holder. At start the dir becomes 0700 and its secrets 0600, with a line for each change.

import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { DataDirLock, HOLDER_FILE } from '../../src/daemon/data-dir-lock.ts';
import { DataDirLockedError } from '../../src/daemon/errors.ts';
import {
  logLines,
  removeDataDir,
  runXenosd,
  startXenosd,
  tempDataDir,
  type XenosdProcess,
} from './xenosd-process.ts';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function dir(): string {
  const d = tempDataDir();
  cleanup.push(() => removeDataDir(d));
  return d;
}

async function start(dataDir: string, args: string[] = []): Promise<XenosdProcess> {
  const xd = await startXenosd({ dataDir, args });
  cleanup.push(() => xd.stop());
  return xd;
}

/** Runs test/daemon/lock-holder.ts on `dataDir`; resolves once it holds the lock. */
async function holder(dataDir: string, mode = ''): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--no-warnings', join(import.meta.dirname, 'lock-holder.ts'), dataDir, mode],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  cleanup.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  for await (const line of createInterface({ input: child.stdout! })) if (line === 'held') break;
  return child;
}

describe('data dir lock', () => {
  it('refuses a second xenosd on the same dir, naming the holder, and leaves the holder alone', async () => {
    const d = dir();
    const first = await start(d);
    const second = runXenosd(['--data-dir', d, '--api', '127.0.0.1:0', '--host-name', 'intruder']);
    expect(await second.exited).toBe(1);
    const lines = second.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^xenosd: another xenosd is using data dir ${d}: pid ${first.child.pid}, running since \\S+; stop it first, or give this one its own --data-dir$`,
      ),
    );
    // The holder still serves, from the files it wrote.
    expect(readFileSync(join(d, 'api.addr'), 'utf8').trim()).toBe(first.url);
    expect((await first.api('/apis/xenos.io/v1alpha1/hosts')).status).toBe(200);
  });

  it('is released when its holder is killed with SIGKILL: a restart on the same dir starts at once', async () => {
    const d = dir();
    for (let i = 0; i < 3; i++) {
      const xd = await start(d);
      expect(JSON.parse(readFileSync(join(d, HOLDER_FILE), 'utf8')).pid).toBe(xd.child.pid);
      xd.child.kill('SIGKILL');
      await xd.exited;
    }
    // The last holder's record is left behind by the kill and names a dead pid: it blocks nothing.
    const xd = await start(d);
    expect((await xd.api('/apis')).status).toBe(200);
    expect(await xd.stop()).toBe(0);
    // A clean stop removes the record.
    expect(() => statSync(join(d, HOLDER_FILE))).toThrow();
  });

  it('never takes a recycled pid for the holder', async () => {
    const d = dir();
    // A stale record naming a live process that holds nothing (this test runner) does not block a start.
    mkdirSync(d, { recursive: true });
    writeFileSync(
      join(d, HOLDER_FILE),
      JSON.stringify({ pid: process.pid, startTime: 1, startedAt: 'then' }),
    );
    const xd = await start(d);
    await xd.stop();
    // A real holder whose record names that live process with another start time: the refusal names no pid.
    const h = await holder(d, 'forge');
    const refused = runXenosd(['--data-dir', d, '--api', '127.0.0.1:0']);
    expect(await refused.exited).toBe(1);
    expect(refused.stderr()).toContain(
      `another xenosd is using data dir ${d} (it holds ${join(d, 'xenosd.lock')}`,
    );
    expect(refused.stderr()).not.toContain(`pid ${process.pid}`);
    h.kill('SIGKILL');
    await new Promise((r) => h.once('exit', r));
    await start(d);
  });

  it('excludes a second holder inside one process too', () => {
    const d = dir();
    const lock = DataDirLock.acquire(d);
    try {
      expect(() => DataDirLock.acquire(d)).toThrow(DataDirLockedError);
      expect(() => DataDirLock.acquire(d)).toThrow(`pid ${process.pid}`);
    } finally {
      lock.release();
    }
    DataDirLock.acquire(d).release();
  });
});

describe('data dir modes', () => {
  const mode = (p: string) => statSync(p).mode & 0o777;

  it('makes the dir 0700 and every secret in it 0600 at start, saying what it changed', async () => {
    const d = dir();
    const key = join(d, 'swarm.key');
    const args = ['--p2p', '127.0.0.1:0', '--cluster-key', key, '--tls-self-signed'];
    const first = await start(d, args);
    await first.stop();
    const secrets = ['admin.token', 'tokens.json', 'instance-token.key', 'p2p.key', 'tls.key', 'swarm.key'];
    chmodSync(d, 0o755);
    for (const s of secrets) chmodSync(join(d, s), 0o644);
    const xd = await start(d, args);
    expect(mode(d)).toBe(0o700);
    for (const s of secrets) expect(mode(join(d, s)), s).toBe(0o600);
    const said = logLines(xd.stderr()).filter((l) => l.component === 'data-dir');
    const line = (path: string, msg: string) => ({
      level: 'info',
      host: 'test-host',
      component: 'data-dir',
      path,
      msg,
    });
    expect(said).toContainEqual(
      expect.objectContaining(line(d, `data dir ${d} had mode 0755; set it to 0700`)),
    );
    for (const s of secrets) {
      const path = join(d, s);
      expect(said).toContainEqual(
        expect.objectContaining(line(path, `secret ${path} had mode 0644; set it to 0600`)),
      );
    }
    // Nothing to change: nothing said.
    await xd.stop();
    const again = await start(d, args);
    expect(again.stderr()).not.toContain('had mode');
  });

  it('warns about a cluster key outside the data dir that others can read, and leaves it as it is', async () => {
    const d = dir();
    const keyDir = dir();
    const key = join(keyDir, 'cluster.key');
    const first = await start(d, ['--p2p', '127.0.0.1:0', '--cluster-key', key]);
    await first.stop();
    chmodSync(key, 0o644);
    const xd = await start(d, ['--p2p', '127.0.0.1:0', '--cluster-key', key]);
    expect(logLines(xd.stderr())).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        component: 'data-dir',
        path: key,
        msg: `secret ${key} has mode 0644: other users can read it; chmod 600 it (xenosd changes modes only inside its data dir)`,
      }),
    );
    expect(mode(key)).toBe(0o644);
  });
});
