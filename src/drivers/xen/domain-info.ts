// What the Xen driver says of a domain (DomainInfo) from what it knows: the domain's record (its last run,
// whether a stop was asked), its row in `xl list` (absent once the domain is gone), and how xl's monitor
// logged the run's end. Pure, so every case is tested without Xen (test/drivers/xen/domain-info.test.ts):
//
//   listed running, blocked or paused          running, pid = domid
//   listed crashed (kept: on_crash=preserve)   crashed, exit code 3 (Xen's SHUTDOWN_crash)
//   a stop was asked                           stopped: exit code 0, or none when it had to be destroyed
//   gone, xl logged reason 0 (poweroff)        stopped, exit code 0
//   gone, xl logged another reason             crashed, exit code = the reason
//   listed, shutting down, no reason yet       running still (it has not ended)
//   gone, nothing logged for this run          crashed: destroyed by hand, or the host restarted
//
// Only uses a log written since the run began: xl keeps the previous run's log beside it.

import type { DomainEndpoint, DomainInfo } from '../driver.ts';
import type { DomainRecord } from '../process/domain-record.ts';
import { SHUTDOWN_CRASH, SHUTDOWN_REASONS, type XlShutdown } from './xl.ts';
import { domainState, type XlListRow } from './xl-list.ts';

export interface XenObservation {
  endpoints: DomainEndpoint[];
  row?: XlListRow;
  ended?: XlShutdown;
}

export function xenDomainInfo(rec: DomainRecord, seen: XenObservation): DomainInfo {
  const info: DomainInfo = {
    id: rec.spec.id,
    driver: 'xen',
    instance: rec.spec.instance,
    state: 'prepared',
    restartCount: rec.restartCount,
    endpoints: seen.endpoints,
  };
  if (rec.preparedDigest) info.imageDigest = rec.preparedDigest;
  if (rec.disk) info.disk = rec.disk;
  const run = rec.run;
  if (!run) return info;
  Object.assign(info, { startedAt: run.startedAt, limits: run.limits, isolation: run.isolation });
  const { row } = seen;
  const state = row ? domainState(row.flags) : undefined;
  if (row && state === 'running') return { ...info, state, pid: row.domid };
  const ended = seen.ended && seen.ended.at >= run.startedAt ? seen.ended : undefined;
  const finishedAt = ended?.at ?? run.stopRequestedAt ?? run.startedAt;
  if (row && state === 'crashed') {
    return {
      ...info,
      state,
      pid: row.domid,
      exitCode: SHUTDOWN_CRASH,
      finishedAt,
      message: 'the guest crashed (Xen shutdown reason 3); xl keeps it until it is stopped or started again',
    };
  }
  if (run.stopRequestedAt) {
    return {
      ...info,
      state: 'stopped',
      exitCode: run.forcedAt ? undefined : 0,
      finishedAt,
      message: run.forcedAt
        ? 'stopped on request; destroyed (xl destroy) after the grace period'
        : 'stopped on request; the guest powered off',
    };
  }
  const reason = ended?.reason;
  if (reason === 0) {
    return { ...info, state: 'stopped', exitCode: 0, finishedAt, message: 'the guest powered off' };
  }
  if (reason !== undefined) {
    return {
      ...info,
      state: 'crashed',
      exitCode: reason,
      finishedAt,
      message: `the guest ended with Xen shutdown reason ${reason} (${SHUTDOWN_REASONS[reason] ?? 'unknown'})`,
    };
  }
  // Still listed, shutting down or being torn down, and xl has not yet said why: not ended yet.
  if (row) return { ...info, state: 'running', pid: row.domid, message: `xl list shows it ${row.flags}` };
  return {
    ...info,
    state: 'crashed',
    finishedAt,
    message: 'the domain is gone and xl recorded no shutdown: destroyed by hand, or the host restarted',
  };
}
