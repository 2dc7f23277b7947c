// What the Xen driver reports of a domain from its record, its `xl list` row and xl's log of the run's end
// (src/drivers/xen/domain-info.ts): each case of the table at the top of that file. The rows and log lines
// are the shapes the real toolstack gave in the dom0 suite (a panicked guest listed `---sc-`).

import { describe, expect, it } from 'vitest';
import type { DomainRecord } from '../../../src/drivers/process/domain-record.ts';
import { xenDomainInfo } from '../../../src/drivers/xen/domain-info.ts';
import type { XlListRow } from '../../../src/drivers/xen/xl-list.ts';

const STARTED = '2026-12-04T10:00:00.000Z';

function record(run: Partial<NonNullable<DomainRecord['run']>> | undefined): DomainRecord {
  return {
    version: 1,
    spec: {
      id: 'xenos-default-web-1-abcdef12',
      instance: { namespace: 'default', name: 'web-1', uid: 'abcdef12-0000-4000-8000-000000000000' },
      image: { path: '/images/guest', format: 'directory' },
    },
    preparedDigest: 'sha256:aa',
    preparedAt: STARTED,
    ports: {},
    restartCount: 0,
    run: run && {
      pid: 7,
      startTime: 0,
      startedAt: STARTED,
      command: ['xl', 'create'],
      env: {},
      cwd: '/data/xen/x',
      limits: { enforced: true },
      ...run,
    },
  };
}

const row = (flags: string): XlListRow => ({
  name: 'xenos-default-web-1-abcdef12',
  domid: 7,
  memoryMiB: 128,
  vcpus: 1,
  flags,
  cpuSeconds: 1.5,
});
const LATER = '2026-12-04T10:01:00.000Z';
const EARLIER = '2026-12-04T09:00:00.000Z';

describe('xenDomainInfo', () => {
  it('is prepared before its first run', () => {
    expect(xenDomainInfo(record(undefined), { endpoints: [] })).toMatchObject({
      state: 'prepared',
      driver: 'xen',
      imageDigest: 'sha256:aa',
    });
  });

  it('runs while listed running, blocked or paused, its pid the domid', () => {
    for (const flags of ['r-----', '-b----', '--p---']) {
      expect(xenDomainInfo(record({}), { endpoints: [], row: row(flags) })).toMatchObject({
        state: 'running',
        pid: 7,
        startedAt: STARTED,
      });
    }
  });

  it('is crashed with exit code 3 while xl keeps a crashed domain', () => {
    const ended = { reason: 3, destroyed: false, at: LATER };
    expect(xenDomainInfo(record({}), { endpoints: [], row: row('---sc-'), ended })).toMatchObject({
      state: 'crashed',
      exitCode: 3,
      finishedAt: LATER,
    });
  });

  it('is stopped when a stop was asked: exit 0 if the guest powered off, none if it was destroyed', () => {
    const ended = { reason: 0, destroyed: false, at: LATER };
    expect(xenDomainInfo(record({ stopRequestedAt: LATER }), { endpoints: [], ended })).toMatchObject({
      state: 'stopped',
      exitCode: 0,
      message: 'stopped on request; the guest powered off',
    });
    const forced = xenDomainInfo(record({ stopRequestedAt: LATER, forcedAt: LATER }), {
      endpoints: [],
      ended: { destroyed: true, at: LATER },
    });
    expect(forced).toMatchObject({ state: 'stopped' });
    expect(forced.exitCode).toBeUndefined();
  });

  it('reads how a run it did not stop ended from xl’s log: poweroff is stopped, another reason crashed', () => {
    expect(
      xenDomainInfo(record({}), { endpoints: [], ended: { reason: 0, destroyed: false, at: LATER } }),
    ).toMatchObject({ state: 'stopped', exitCode: 0 });
    expect(
      xenDomainInfo(record({}), { endpoints: [], ended: { reason: 4, destroyed: false, at: LATER } }),
    ).toMatchObject({ state: 'crashed', exitCode: 4, message: expect.stringContaining('watchdog') });
  });

  it('is still running while listed shutting down and xl has not said why', () => {
    expect(xenDomainInfo(record({}), { endpoints: [], row: row('---s--') })).toMatchObject({
      state: 'running',
      pid: 7,
    });
  });

  it('is crashed, without an exit code, when gone with nothing logged for this run (an older log is not this run’s)', () => {
    for (const ended of [undefined, { reason: 0, destroyed: false, at: EARLIER }]) {
      const info = xenDomainInfo(record({}), { endpoints: [], ended });
      expect(info).toMatchObject({ state: 'crashed', message: expect.stringContaining('destroyed by hand') });
      expect(info.exitCode).toBeUndefined();
    }
  });
});
