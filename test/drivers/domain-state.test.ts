// How a process-driver domain that ended is described (src/drivers/process/domain-state.ts), from its
// record and the files its supervisor left: here, a forced stop whose supervisor still wrote its child's
// end before its own SIGKILL landed (the tree is killed children first) is still a SIGKILL.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DomainPaths, type DomainRecord } from '../../src/drivers/process/domain-record.ts';
import { describeDomain } from '../../src/drivers/process/domain-state.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A record of a run whose supervisor has ended (a pid that is gone), stopped on request at `stop`. */
function endedRun(paths: DomainPaths, stop: { forced: boolean }, exitFile?: string): DomainRecord {
  mkdirSync(paths.run, { recursive: true });
  if (exitFile !== undefined) writeFileSync(paths.exitFile, exitFile);
  const gone = spawnSync('true').pid; // ended and reaped: no process has this pid with this start time
  const at = new Date().toISOString();
  return {
    version: 1,
    spec: {
      id: paths.id,
      instance: { namespace: 'default', name: 'stubborn', uid: 'u1' },
      image: { path: '/x' },
    },
    preparedDigest: '',
    preparedAt: at,
    ports: {},
    restartCount: 0,
    run: {
      pid: gone,
      startTime: 1,
      startedAt: at,
      command: ['server'],
      env: {},
      cwd: '/',
      limits: {} as never,
      stopRequestedAt: at,
      ...(stop.forced ? { forcedAt: at } : {}),
    },
  } as DomainRecord;
}

describe('describeDomain of a stopped domain', () => {
  const setup = () => {
    dir = mkdtempSync(join(tmpdir(), 'xenos-domain-state-'));
    return new DomainPaths(dir, 'default-stubborn-1');
  };

  it('reports a forced stop as SIGKILL even when the supervisor recorded an exit code first', async () => {
    const paths = setup();
    const info = await describeDomain(paths, endedRun(paths, { forced: true }, '1\n'), '127.0.0.1');
    expect(info).toMatchObject({ state: 'stopped', signal: 'SIGKILL', exitCode: 1 });
    expect(info.message).toMatch(/forced with SIGKILL after the grace period/);
  });

  it('reports a forced stop with no exit file as SIGKILL', async () => {
    const paths = setup();
    const info = await describeDomain(paths, endedRun(paths, { forced: true }), '127.0.0.1');
    expect(info).toMatchObject({ state: 'stopped', signal: 'SIGKILL' });
  });

  it('reports a polite stop by how the service ended', async () => {
    const paths = setup();
    const info = await describeDomain(paths, endedRun(paths, { forced: false }, '0\n'), '127.0.0.1');
    expect(info).toMatchObject({ state: 'stopped', exitCode: 0 });
    expect(info.signal).toBeUndefined();
  });
});
