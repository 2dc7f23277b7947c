// The source's side of a live Xen move (migrateOutLive) around its commit, with everything but xl real:
// the xenosd side of the stream (the helper xl runs, the unix tunnel, the reader that holds the stream at
// libxl's END record) and the control messages. A stand-in for `xl migrate` runs the helper as xl does and
// behaves as xl does after the stream: it waits for the destination's answer, with no end of its own, and
// "resumes the source" when the stream ends first.
//
// Before the commit a failed move leaves the guest at the source, its disks running again. After it the
// guest is the destination's: when the destination says it could not run it (a device model that did not
// start), or the caller gives up, xl may not go on waiting or resume the source: xenosd ends xl at once and
// the source's copy goes. (The real xl on two real Xen hosts: two-hosts.test.ts.)

import { spawn } from 'node:child_process';
import { type Duplex, duplexPair } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import type { DomainSpec, MigrateOutOptions, MigrationTransport } from '../../../src/drivers/driver.ts';
import { CONTROL_LABEL, ControlChannel, XL_LABEL } from '../../../src/drivers/migration-control.ts';
import type { DomainRecord } from '../../../src/drivers/process/domain-record.ts';
import { type LiveMigrationHost, migrateOutLive } from '../../../src/drivers/xen/live-migration.ts';
import { xlStream } from './xl-fixtures.ts';

const ID = 'xenos-default-web-3f0c9b1e';
const SPEC: DomainSpec = {
  id: ID,
  instance: { namespace: 'default', name: 'web', uid: '3f0c9b1e-5d2a-4c8e-9f7a-0b1c2d3e4f50' },
  image: { path: '/nonexistent' },
};

/** Stands in for `xl migrate`: runs its rune (the real helper) with `sh -c`, writes a PVH guest's stream
 *  and waits for the destination's answer: "ready" is a move done; the stream ending first is a failed
 *  move, after which xl resumes the source; `stop` kills it. */
class StandInXl {
  killed = false;
  resumed = false;

  send = (_id: string, _config: string, rune: string, stop?: AbortSignal): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const child = spawn('sh', ['-c', rune], { stdio: ['pipe', 'pipe', 'inherit'] });
      child.stdin.on('error', () => {});
      child.stdin.write(xlStream().bytes);
      let answer = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => {
        answer += s;
        if (answer.includes('ready')) {
          child.kill();
          resolve();
        }
      });
      child.stdout.on('end', () => {
        if (answer.includes('ready') || this.killed) return;
        this.resumed = true;
        reject(new Error('Migration failed, resuming at sender.'));
      });
      stop?.addEventListener(
        'abort',
        () => {
          this.killed = true;
          child.kill('SIGKILL');
          reject(stop.reason);
        },
        { once: true },
      );
    });
}

/** The driver's side of the move, recording what was asked of it. */
function scriptedHost(xl: StandInXl) {
  const calls: string[] = [];
  const held = Promise.withResolvers<void>();
  const refuse = async (): Promise<never> => {
    throw new Error('the source is not a destination');
  };
  const host: LiveMigrationHost = {
    readRecord: async () =>
      ({
        version: 1,
        spec: SPEC,
        preparedDigest: '',
        preparedAt: '',
        ports: {},
        restartCount: 0,
        run: { pid: 7 },
      }) as DomainRecord,
    disksOf: async () => [],
    addressOf: () => undefined,
    send: xl.send,
    holdDisks: async () => {
      calls.push('holdDisks');
      held.resolve();
    },
    releaseDisks: async () => void calls.push('releaseDisks'),
    forget: async () => void calls.push('forget'),
    prepareIncoming: refuse,
    receive: refuse,
    destroy: async (id) => void calls.push(`destroy ${id}`),
    removeSource: async (id) => void calls.push(`removeSource ${id}`),
  };
  return { host, calls, held: held.promise };
}

/** A transport whose other ends the test holds, by label, as the destination would. */
function loopTransport() {
  const ends = new Map<string, PromiseWithResolvers<Duplex>>();
  const end = (label: string) => {
    if (!ends.has(label)) ends.set(label, Promise.withResolvers<Duplex>());
    return ends.get(label)!;
  };
  const nears = new Map<string, Duplex>();
  const transport: MigrationTransport = {
    async open(label) {
      const [near, far] = duplexPair();
      nears.set(label, near);
      end(label).resolve(far);
      return near;
    },
  };
  return { transport, far: (label: string) => end(label).promise, near: (label: string) => nears.get(label) };
}

/** A move under way: the destination's control answered with its config, the xl stream drained. */
async function startMove(options: MigrateOutOptions = {}) {
  const xl = new StandInXl();
  const { host, calls, held } = scriptedHost(xl);
  const { transport, far, near } = loopTransport();
  const moving = migrateOutLive(host, ID, transport, {
    ...options,
    commit: async () => void calls.push('commit'),
  });
  moving.catch(() => {});
  const control = new ControlChannel(await far(CONTROL_LABEL));
  await control.next(['hello'], 5_000);
  control.send({ type: 'ready', config: 'name = "web"\n' });
  const stream = await far(XL_LABEL);
  stream.resume();
  return { xl, calls, held, control, stream, moving, near };
}

describe('a live Xen move, at the source', () => {
  it('is done when the destination answers xl and says the guest runs there', async () => {
    const m = await startMove();
    m.control.send({ type: 'received' });
    await vi.waitFor(() => expect(m.calls).toContain('commit'));
    m.stream.write('migration receiver ready\n');
    m.control.send({ type: 'started', ok: true });
    const report = await m.moving;
    expect(report.mode).toBe('live');
    expect(m.calls).toEqual(['holdDisks', 'commit', 'forget']);
    expect(m.xl.killed).toBe(false);
  });

  it('before the commit, a failure leaves the guest at the source with its disks running again', async () => {
    const m = await startMove();
    await m.held;
    // The destination could not take the disk layer: it ends the move.
    m.control.end();
    await expect(m.moving).rejects.toThrow(/closed the control stream/);
    await expect(m.moving).rejects.not.toThrow(/committed/);
    expect(m.calls).toEqual(['holdDisks', 'releaseDisks']);
    expect(m.xl).toMatchObject({ resumed: true, killed: false });
  });

  it('before the commit, a lost stream ends the move at once, though the destination says nothing', async () => {
    const m = await startMove();
    await m.held;
    // The link to the destination's xl breaks while the switch-over waits for its word on the disk
    // layer; its control stream stays open and silent. Waiting on (5 min) would only keep the guest paused.
    const broke = Date.now();
    m.near(XL_LABEL)?.destroy(new Error('the link to the destination broke'));
    await expect(m.moving).rejects.toThrow(/the link to the destination broke/);
    await expect(m.moving).rejects.not.toThrow(/committed/);
    expect(Date.now() - broke).toBeLessThan(5_000);
    expect(m.calls).toEqual(['holdDisks', 'releaseDisks']);
    expect(m.xl).toMatchObject({ resumed: true, killed: false });
  });

  it('after the commit, a destination that could not run the guest ends xl at once and the source copy goes', async () => {
    const m = await startMove();
    m.control.send({ type: 'received' });
    await vi.waitFor(() => expect(m.calls).toContain('commit'));
    // The destination's xl failed (its device model did not start): its stream ends with no answer,
    // which xl here would take for "resume the source", then the destination says why.
    m.stream.end();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const said = Date.now();
    m.control.send({ type: 'started', ok: false, error: 'device model did not start: -9' });
    await expect(m.moving).rejects.toThrow(
      /committed, then failed .*the copy here is removed.*could not run it: device model did not start: -9/,
    );
    expect(Date.now() - said).toBeLessThan(5_000);
    expect(m.xl).toMatchObject({ killed: true, resumed: false });
    expect(m.calls).toEqual(['holdDisks', 'commit', `removeSource ${ID}`]);
  });

  it('after the commit, a lost stream ends xl, which never reads the loss as "resume here"', async () => {
    const m = await startMove();
    m.control.send({ type: 'received' });
    await vi.waitFor(() => expect(m.calls).toContain('commit'));
    m.near(XL_LABEL)?.destroy(new Error('the link to the destination broke'));
    await expect(m.moving).rejects.toThrow(/committed, then failed .*the link to the destination broke/);
    expect(m.xl).toMatchObject({ killed: true, resumed: false });
    expect(m.calls).toEqual(['holdDisks', 'commit', `removeSource ${ID}`]);
  });

  it('after the commit, giving up ends xl and the source copy goes', async () => {
    const giveUp = new AbortController();
    const m = await startMove({ signal: giveUp.signal });
    m.control.send({ type: 'received' });
    await vi.waitFor(() => expect(m.calls).toContain('commit'));
    giveUp.abort(new Error('the migration timed out'));
    await expect(m.moving).rejects.toThrow(/committed, then failed .*given up: the migration timed out/);
    expect(m.xl.killed).toBe(true);
    expect(m.calls).toEqual(['holdDisks', 'commit', `removeSource ${ID}`]);
  });
});
