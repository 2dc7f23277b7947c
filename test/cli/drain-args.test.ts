// xenosctl cordon, uncordon and drain without a server: their help, the usage errors that stop them
// before any request (exit 2), and how a ServiceMigration's status is
// shown (one line per phase; plain lines only on milestones without a terminal, a redraw in place on one).

import { describe, expect, it } from 'vitest';
import { parseMigrationMode } from '../../src/cli/args.ts';
import type { Io } from '../../src/cli/context.ts';
import { MigrationBoard, migrationLine } from '../../src/cli/migration-progress.ts';
import type { ServiceMigration } from '../../src/model/service-migration.ts';
import { xenosctlInProcess } from './run-cli-in-process.ts';

// Nothing listens there: a command that got past its arguments would fail to connect instead.
const env = { XENOS_SERVER: 'http://127.0.0.1:9', XENOS_TOKEN: 't' };

describe('help', () => {
  it('documents cordon, uncordon and drain, and lists them in the overview', async () => {
    const overview = await xenosctlInProcess(['--help'], env);
    expect(overview.stdout).toMatch(/^\s+cordon /m);
    expect(overview.stdout).toMatch(/^\s+uncordon /m);
    expect(overview.stdout).toMatch(/^\s+drain /m);
    const drain = await xenosctlInProcess(['drain', '--help'], env);
    expect(drain.code).toBe(0);
    expect(drain.stdout).toContain('--timeout <duration>');
    expect(drain.stdout).toContain('--mode <mode>');
    expect(drain.stdout).toContain('xenos.io/drain=HOST');
    const cordon = await xenosctlInProcess(['cordon', '--help'], env);
    expect(cordon.stdout).toContain('spec.unschedulable');
  });
});

describe('usage errors (exit 2, no request made)', () => {
  it.each([
    [['drain'], /missing required argument 'host'/],
    [['cordon'], /missing required argument 'hosts'/],
    [['uncordon'], /missing required argument 'hosts'/],
    [['drain', 'a', '--mode', 'warp'], /invalid --mode "warp": expected auto, live or cold/],
    [['drain', 'a', '--timeout', 'soon'], /invalid --timeout "soon"/],
    [['drain', 'a', '--timeout', '0s'], /--timeout must be longer than 0/],
    [['drain', 'a', 'b'], /too many arguments/],
  ])('xenosctl %j', async (args, message) => {
    const r = await xenosctlInProcess(args as string[], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/ECONNREFUSED|connect/);
  });

  it('accepts the modes in any case', () => {
    expect([parseMigrationMode('auto'), parseMigrationMode('LIVE'), parseMigrationMode('Cold')]).toEqual([
      'Auto',
      'Live',
      'Cold',
    ]);
  });
});

const migration = (status: ServiceMigration['status'], spec: Partial<ServiceMigration['spec']> = {}) =>
  ({
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceMigration',
    metadata: { name: 'm', namespace: 'default' },
    spec: { instanceRef: { name: 'web-1' }, ...spec },
    status,
  }) as ServiceMigration;

const migrated = (status: 'True' | 'False', reason: string, message: string) => ({
  type: 'Migrated',
  status,
  reason,
  message,
  lastTransitionTime: '2026-12-03T18:00:00Z',
});

describe('a migration as one line', () => {
  it('says where each phase is', () => {
    expect(migrationLine(migration(undefined))).toBe('Pending');
    expect(
      migrationLine(
        migration({
          targetHost: 'b',
          conditions: [migrated('False', 'PullingImage', 'waiting for host b to pull image sha256:1')],
        }),
      ),
    ).toBe('Pending → b (PullingImage: waiting for host b to pull image sha256:1)');
    expect(
      migrationLine(
        migration({
          phase: 'Running',
          targetHost: 'b',
          mode: 'Live',
          progress: {
            stage: 'memory',
            bytes: 64 * 1024 * 1024,
            total: 128 * 1024 * 1024,
            percent: 50,
            dirtyRateBytesPerSecond: 1024 * 1024,
            updatedAt: '2026-12-03T18:00:01Z',
          },
        }),
      ),
    ).toBe('Running → b (Live)  memory  50%  64.0 MiB/128.0 MiB  dirtying 1.0 MiB/s');
    expect(
      migrationLine(
        migration({
          phase: 'Succeeded',
          targetHost: 'c',
          mode: 'Live',
          startedAt: '2026-12-03T18:00:00Z',
          completedAt: '2026-12-03T18:00:02.5Z',
          downtimeMs: 14,
          bytesTransferred: 3 * 1024 * 1024,
        }),
      ),
    ).toBe('Succeeded → c (Live, 2.5 s, paused 14 ms, 3.0 MiB)');
    expect(
      migrationLine(
        migration({
          phase: 'Failed',
          conditions: [migrated('False', 'NoTarget', 'no host can take the instance: b is cordoned')],
        }),
      ),
    ).toBe('Failed: NoTarget: no host can take the instance: b is cordoned');
  });
});

function capture(tty: boolean): { io: Io; text: () => string } {
  let text = '';
  const io: Io = {
    stdout: () => {},
    stderr: (t) => {
      text += t;
    },
    env: {},
    cwd: '/',
    readStdin: async () => '',
    stderrTTY: tty,
    columns: 60,
  };
  return { io, text: () => text };
}

describe('the board of moves', () => {
  const running = (percent: number) =>
    migration({
      phase: 'Running',
      targetHost: 'b',
      mode: 'Cold',
      progress: { stage: 'files', bytes: percent, total: 100, percent, updatedAt: 'x' },
    });

  it('prints a plain line per milestone when stderr is not a terminal', () => {
    const out = capture(false);
    const board = new MigrationBoard(out.io, ['default/web-1', 'default/db']);
    board.update('default/web-1', migration(undefined));
    board.update('default/web-1', running(10));
    board.update('default/web-1', running(60)); // same phase, stage and target: no new line
    board.set('default/db', 'not moved: refused');
    expect(out.text()).toBe(
      [
        'default/web-1  Pending',
        'default/web-1  Running → b (Cold)  files  10%  10 B/100 B',
        'default/db     not moved: refused',
        '',
      ].join('\n'),
    );
    expect(out.text()).not.toContain('\x1b');
  });

  it('redraws every line in place on a terminal, cut to its width', () => {
    const out = capture(true);
    const board = new MigrationBoard(out.io, ['default/web-1', 'default/db']);
    board.update('default/web-1', running(10));
    board.update('default/web-1', running(60));
    const frames = out.text().split('\x1b[2F');
    expect(frames).toHaveLength(2); // the second draw went back up the two lines of the first
    expect(frames[1]).toBe(
      '\x1b[2Kdefault/web-1  Running → b (Cold)  files  60%  60 B/100 B\n\x1b[2Kdefault/db     Pending\n',
    );
    board.set('default/db', 'x'.repeat(100));
    const last = out.text().split('\x1b[2F').at(-1)!;
    for (const line of last.split('\n').filter(Boolean))
      expect(line.replace('\x1b[2K', '').length).toBeLessThan(60);
  });
});
