// The QMP client against a real QEMU with no guest (`-machine none`): greeting and capabilities, commands
// with ids answered out of order-safe, QEMU's refusals as QmpCommandError with QMP's class, events with
// QEMU's timestamps, waiting for a socket that does not exist yet, the single-client monitor reported as
// such, aborts and timeouts, and the connection's end when QEMU quits.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QmpCommandError, QmpConnectionError, QmpTimeoutError } from '../../src/drivers/qemu/errors.ts';
import { QmpClient, type QmpEvent, qmpTimeMs } from '../../src/drivers/qemu/qmp.ts';

describe('QMP client (real QEMU, no guest)', () => {
  let dir: string;
  let socketPath: string;
  let qemu: ChildProcess | undefined;
  const clients: QmpClient[] = [];

  /** QEMU with its monitor at socketPath (given relative to `cwd` when one is given). */
  function startQemu(cwd?: string): ChildProcess {
    const path = cwd ? socketPath.slice(cwd.length + 1) : socketPath;
    qemu = spawn(
      'qemu-system-x86_64',
      [
        '-machine',
        'none',
        '-nodefaults',
        '-display',
        'none',
        '-no-user-config',
        '-qmp',
        `unix:${path},server=on,wait=off`,
      ],
      { stdio: 'ignore', cwd },
    );
    return qemu;
  }

  async function client(): Promise<QmpClient> {
    const c = await QmpClient.connect(socketPath, { domainId: 'test-domain', timeoutMs: 10_000 });
    clients.push(c);
    return c;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xenos-qmp-'));
    socketPath = join(dir, 'qmp.sock');
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
      qemu.kill('SIGKILL');
      await once(qemu, 'exit');
    }
    qemu = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('waits for the socket to appear, negotiates, and runs concurrent commands with their own answers', async () => {
    const connecting = client(); // before QEMU exists: the client retries until the socket answers
    startQemu();
    const qmp = await connecting;
    expect(qmp.version.major).toBeGreaterThanOrEqual(4);
    const [status, version, name] = await Promise.all([
      qmp.execute<{ status: string; running: boolean }>('query-status'),
      qmp.execute<{ qemu: { major: number } }>('query-version'),
      qmp.execute<Record<string, unknown>>('query-name'),
    ]);
    expect(typeof status.running).toBe('boolean');
    expect(version.qemu.major).toBe(qmp.version.major);
    expect(name).toEqual({});
  });

  it("reports QEMU's refusals with QMP's class and description", async () => {
    startQemu();
    const qmp = await client();
    const unknown = await qmp.execute('no-such-command').catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(QmpCommandError);
    expect((unknown as QmpCommandError).qmpClass).toBe('CommandNotFound');
    expect((unknown as QmpCommandError).message).toMatch(/domain test-domain: .*no-such-command/);
    const badArg = await qmp.execute('human-monitor-command', { nonsense: 1 }).catch((e: unknown) => e);
    expect(badArg).toBeInstanceOf(QmpCommandError);
    expect((badArg as QmpCommandError).qmpClass).toBe('GenericError');
    // The connection stays usable after a refusal.
    await expect(qmp.execute('query-status')).resolves.toHaveProperty('status');
  });

  it("delivers events with QEMU's timestamps, to waiters and to the event stream", async () => {
    startQemu();
    const qmp = await client();
    const seen: QmpEvent[] = [];
    const reader = (async () => {
      for await (const e of qmp.events()) {
        seen.push(e);
        if (e.event === 'RESUME') return;
      }
    })();
    const before = Date.now();
    const stopped = qmp.waitForEvent('STOP', { timeoutMs: 10_000 });
    await qmp.execute('stop');
    const stop = await stopped;
    const resumed = qmp.waitForEvent('RESUME', { timeoutMs: 10_000 });
    await qmp.execute('cont');
    const resume = await resumed;
    await reader;
    expect(seen.map((e) => e.event)).toEqual(['STOP', 'RESUME']);
    expect(Number.isInteger(stop.timestamp.seconds) && Number.isInteger(stop.timestamp.microseconds)).toBe(
      true,
    );
    // QEMU's clock, not ours: within the test's window, in order.
    expect(qmpTimeMs(stop.timestamp)).toBeGreaterThanOrEqual(before - 1000);
    expect(qmpTimeMs(stop.timestamp)).toBeLessThanOrEqual(Date.now() + 1000);
    expect(qmpTimeMs(resume.timestamp)).toBeGreaterThanOrEqual(qmpTimeMs(stop.timestamp));
  });

  it('says so when another client holds the monitor, and lets the next one in after it closes', async () => {
    startQemu();
    const first = await client();
    const second = await QmpClient.connect(socketPath, { timeoutMs: 1500 }).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(QmpConnectionError);
    expect((second as Error).message).toMatch(/no QMP greeting within 1500 ms.*another client/);
    await first.close();
    const third = await client();
    await expect(third.execute('query-status')).resolves.toHaveProperty('status');
  });

  it('aborts and times out a command without breaking the connection', async () => {
    startQemu();
    const qmp = await client();
    const ac = new AbortController();
    ac.abort(new Error('caller gave up'));
    await expect(qmp.execute('query-status', undefined, { signal: ac.signal })).rejects.toThrow(
      'caller gave up',
    );
    const waiting = await qmp.waitForEvent('NEVER_SENT', { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(waiting).toBeInstanceOf(QmpTimeoutError);
    await expect(qmp.execute('query-status')).resolves.toHaveProperty('running');
    // A wait made before a command that then fails, and never awaited, ends without an unhandled rejection.
    const unhandled: unknown[] = [];
    const note = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', note);
    try {
      const gaveUp = new AbortController();
      qmp.waitForEvent('NEVER_SENT', { signal: gaveUp.signal });
      gaveUp.abort(new Error('the link broke'));
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off('unhandledRejection', note);
    }
    expect(unhandled).toEqual([]);
  });

  it('ends when QEMU quits: SHUTDOWN arrives, waiters and later commands fail as a closed connection', async () => {
    const proc = startQemu();
    const qmp = await client();
    const shutdown = qmp.waitForEvent('SHUTDOWN', { timeoutMs: 10_000 });
    const never = qmp.waitForEvent('NEVER_SENT', { timeoutMs: 10_000 }).catch((e: unknown) => e);
    const exited = once(proc, 'exit');
    await qmp.execute('quit');
    expect((await shutdown).data).toMatchObject({ guest: false });
    await qmp.closed;
    await exited;
    expect(qmp.connected).toBe(false);
    expect(await never).toBeInstanceOf(QmpConnectionError);
    await expect(qmp.execute('query-status')).rejects.toBeInstanceOf(QmpConnectionError);
  });

  it('reaches a monitor whose path is longer than a unix socket address holds', async () => {
    const deep = join(dir, 'd'.repeat(60), 'e'.repeat(60));
    await mkdir(deep, { recursive: true });
    socketPath = join(deep, 'qmp.sock');
    expect(socketPath.length).toBeGreaterThan(108);
    startQemu(deep); // QEMU itself cannot bind so long a path either: it binds relative to its cwd
    const qmp = await client();
    await expect(qmp.execute('query-status')).resolves.toHaveProperty('running');
  });

  it('fails to connect with a located error when nothing listens', async () => {
    const err = await QmpClient.connect(join(dir, 'absent.sock'), { timeoutMs: 300, domainId: 'd1' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(QmpConnectionError);
    expect((err as Error).message).toMatch(
      /domain d1: QMP monitor .*absent\.sock: no connection within 300 ms/,
    );
  });
});
