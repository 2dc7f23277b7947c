// The source QEMU's side of a live migration, in QMP: mirror the guest's overlays into the
// destination's NBD exports, tune and start the memory migration, complete the mirrors at QEMU's pause
// before the switchover, and — when anything fails before the commit — undo it all so the guest runs on
// here. The order follows libvirt's: the mirrors are cancelled (which, once they are in sync, completes
// them) while the guest is stopped, so every write it made is on the destination before its memory is.
// Background copy mode, not write-blocking: guests were seen crashing after migrations with the latter.

import { setTimeout as sleep } from 'node:timers/promises';
import { diskNode } from './qemu-command.ts';
import { type QmpClient, type QmpEvent, qmpTimeMs } from './qmp.ts';

export interface LiveMigrationTuning {
  /** QEMU's `downtime-limit`: the pause it aims for when it decides to switch over (ms). Default 20. */
  downtimeLimitMs?: number;
  /** QEMU's `max-bandwidth` for memory (bytes/s): what the link carries. Default 1 GiB/s. */
  maxBandwidthBytesPerSecond?: number;
  /** Let QEMU slow a guest's vCPUs that dirty memory faster than the link carries. Default true. */
  autoConverge?: boolean;
  /** Keep QEMU's max-bandwidth just under what the tunnel carries (migration-monitor.ts). Default true. */
  paceBandwidth?: boolean;
  /** How long the destination may take to start its QEMU and answer (ms). Default 60 s. */
  setupTimeoutMs?: number;
  /** How long the destination's answer to `go` may take before the source reports no pause (ms). */
  resumeTimeoutMs?: number;
}

export const LIVE_DEFAULTS: Required<LiveMigrationTuning> = {
  downtimeLimitMs: 20,
  maxBandwidthBytesPerSecond: 1024 * 1024 * 1024,
  autoConverge: true,
  paceBandwidth: true,
  setupTimeoutMs: 60_000,
  resumeTimeoutMs: 10_000,
};

export type MigrationQmp = Pick<QmpClient, 'execute' | 'waitForEvent' | 'onEvent'>;

const POLL_MS = 250;
/** The pacer never limits QEMU below this (bytes/s). */
const MIN_BANDWIDTH = 1024 * 1024;
const NEVER_MS = 24 * 3600_000;
/** Statuses of query-migrate in which a migration is still going. */
const ACTIVE = new Set(['setup', 'active', 'pre-switchover', 'device', 'wait-unplug', 'cancelling']);

/** What the memory tunnel saw so far (unix-tunnel.ts Bridge). */
export interface LinkCounters {
  sent: number;
  stalledMs: number;
}

export interface MemoryProgress {
  switchover: boolean;
  ramTransferred: number;
  ramRemaining: number;
  dirtyRateBytesPerSecond?: number;
}

interface QueryMigrate {
  status?: string;
  'error-desc'?: string;
  ram?: {
    transferred: number;
    remaining: number;
    'dirty-pages-rate'?: number;
    'page-size'?: number;
  };
}

/** The mirror job and target node of disk `name`. */
const MIGRATE_PREFIX = 'migrate-';
const jobOf = (name: string) => `${MIGRATE_PREFIX}${name}`;

export class MigrationMonitor {
  private readonly qmp: MigrationQmp;
  private readonly id: string;
  private readonly stop = new AbortController();
  private jobs: string[] = [];

  constructor(qmp: MigrationQmp, id: string) {
    this.qmp = qmp;
    this.id = id;
  }

  /** Ends every wait of this migration with `err` (a tunnel failed). */
  abort(err: Error): void {
    if (!this.stop.signal.aborted) this.stop.abort(err);
  }

  private signal(outer?: AbortSignal): AbortSignal {
    return outer ? AbortSignal.any([outer, this.stop.signal]) : this.stop.signal;
  }

  /** Mirrors each disk's overlay to the destination's export of it over `socket` (relative to QEMU's
   *  working directory) until every mirror is in sync; from then on each guest write goes to both. */
  async mirrorDisks(
    names: string[],
    socket: string,
    onProgress: (p: { done: number; total: number }) => void,
    outer?: AbortSignal,
  ): Promise<void> {
    const signal = this.signal(outer);
    if (!names.length) return;
    const failed = this.failedJob(signal);
    const ready = names.map((name) =>
      this.qmp.waitForEvent('BLOCK_JOB_READY', {
        match: (e) => e.data?.device === jobOf(name),
        signal,
        timeoutMs: NEVER_MS,
      }),
    );
    for (const name of names) {
      await this.qmp.execute(
        'blockdev-add',
        {
          driver: 'nbd',
          'node-name': jobOf(name),
          server: { type: 'unix', path: socket },
          export: diskNode(name),
        },
        { signal },
      );
      await this.qmp.execute(
        'blockdev-mirror',
        {
          'job-id': jobOf(name),
          device: diskNode(name),
          target: jobOf(name),
          sync: 'top',
          'copy-mode': 'background',
        },
        { signal },
      );
      this.jobs.push(jobOf(name));
    }
    const poll = this.poll(async () => {
      const jobs =
        await this.qmp.execute<{ device: string; offset: number; len: number }[]>('query-block-jobs');
      const mine = jobs.filter((j) => this.jobs.includes(j.device));
      onProgress({
        done: mine.reduce((n, j) => n + j.offset, 0),
        total: mine.reduce((n, j) => n + j.len, 0),
      });
    }, signal);
    try {
      await Promise.race([Promise.all(ready), failed.promise]);
    } finally {
      poll.stop();
      failed.off();
    }
  }

  /** Rejects when a mirror of ours fails or ends on its own (it should stay until cancelled). */
  private failedJob(signal: AbortSignal) {
    const { promise, reject } = Promise.withResolvers<never>();
    promise.catch(() => {});
    const off = this.qmp.onEvent((e: QmpEvent) => {
      const device = String(e.data?.device ?? '');
      if (!this.jobs.includes(device)) return;
      if (e.event === 'BLOCK_JOB_ERROR' || (e.event === 'BLOCK_JOB_COMPLETED' && e.data?.error)) {
        reject(
          new Error(
            `copying disk ${device.replace(/^migrate-/, '')} failed: ${String(e.data?.error ?? e.data?.operation ?? 'I/O error')}`,
          ),
        );
      } else if (e.event === 'BLOCK_JOB_CANCELLED') {
        reject(new Error(`the copy of disk ${device.replace(/^migrate-/, '')} was cancelled`));
      }
    });
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    return {
      promise,
      off: () => {
        off();
        signal.removeEventListener('abort', onAbort);
      },
    };
  }

  async configure(tuning: Required<LiveMigrationTuning>): Promise<void> {
    await this.qmp.execute('migrate-set-capabilities', {
      capabilities: [
        { capability: 'events', state: true },
        { capability: 'pause-before-switchover', state: true },
        { capability: 'auto-converge', state: tuning.autoConverge },
      ],
    });
    await this.qmp.execute('migrate-set-parameters', {
      'downtime-limit': tuning.downtimeLimitMs,
      'max-bandwidth': tuning.maxBandwidthBytesPerSecond,
    });
  }

  /** Migrates memory over `socket`; at the pause before the switchover, completes the mirrors. Resolves
   *  once QEMU completed: the guest is stopped here for good. */
  async migrateMemory(
    socket: string,
    link: (() => LinkCounters) | undefined,
    maxBandwidth: number,
    onProgress: (p: MemoryProgress) => void,
    outer?: AbortSignal,
  ): Promise<{ stoppedAtMs: number; ramTransferred: number }> {
    const signal = this.signal(outer);
    const pace = link ? this.pacer(link, maxBandwidth) : async () => {};
    const failed = this.failedJob(signal);
    const stopped = this.qmp.waitForEvent('STOP', { signal, timeoutMs: NEVER_MS });
    const preSwitchover = this.qmp.waitForEvent('MIGRATION', {
      match: (e) => e.data?.status !== 'setup' && e.data?.status !== 'active',
      signal,
      timeoutMs: NEVER_MS,
    });
    let switchover = false;
    const report = async () => {
      if (!switchover) await pace();
      const q = await this.qmp.execute<QueryMigrate>('query-migrate');
      if (!q.ram) return;
      const page = q.ram['page-size'] ?? 4096;
      onProgress({
        switchover,
        ramTransferred: q.ram.transferred,
        ramRemaining: q.ram.remaining,
        dirtyRateBytesPerSecond: (q.ram['dirty-pages-rate'] ?? 0) * page,
      });
    };
    const poll = this.poll(report, signal);
    try {
      await this.qmp.execute('migrate', { uri: `unix:${socket}` }, { signal });
      const at = await Promise.race([preSwitchover, failed.promise]);
      if (at.data?.status !== 'pre-switchover') throw await this.migrationFailure(String(at.data?.status));
      // The guest is stopped: one last report, then no more QMP traffic than the switchover needs.
      switchover = true;
      poll.stop();
      await report().catch(() => {});
      await this.completeMirrors(signal);
      const done = this.qmp.waitForEvent('MIGRATION', {
        match: (e) =>
          e.data?.status === 'completed' || e.data?.status === 'failed' || e.data?.status === 'cancelled',
        signal,
        timeoutMs: NEVER_MS,
      });
      await this.qmp.execute('migrate-continue', { state: 'pre-switchover' }, { signal });
      const end = await done;
      if (end.data?.status !== 'completed') throw await this.migrationFailure(String(end.data?.status));
      const q = await this.qmp.execute<QueryMigrate>('query-migrate');
      return { stoppedAtMs: qmpTimeMs((await stopped).timestamp), ramTransferred: q.ram?.transferred ?? 0 };
    } finally {
      poll.stop();
      failed.off();
    }
  }

  /** Keeps QEMU's `max-bandwidth` just under what the link carries (additive-increase, multiplicative-
   *  decrease on the time the tunnel was full). QEMU decides when to switch over from the rate it sees; if it
   *  writes faster than the link, the surplus queues in the tunnel and every queued byte adds to the
   *  pause (seen here: 60–500 ms). Never above `cap`. */
  private pacer(link: () => LinkCounters, cap: number) {
    let limit = cap;
    let last = { ...link(), at: performance.now() };
    return async () => {
      const now = { ...link(), at: performance.now() };
      const seconds = (now.at - last.at) / 1000;
      if (seconds < 0.2) return;
      const rate = (now.sent - last.sent) / seconds;
      // The share of the time QEMU's bytes waited for the link: most of it, the link is full.
      const stalled = (now.stalledMs - last.stalledMs) / (now.at - last.at);
      last = now;
      let next = limit;
      if (stalled > 0.5 && rate > 0) next = Math.max(MIN_BANDWIDTH, rate * 0.9);
      else if (stalled < 0.1 && rate >= limit * 0.7) next = Math.min(cap, limit * 1.25);
      if (Math.abs(next - limit) / limit < 0.05) return;
      limit = Math.round(next);
      await this.qmp.execute('migrate-set-parameters', { 'max-bandwidth': limit });
    };
  }

  /** Cancelling a mirror that is in sync completes it: the target holds every write. */
  private async completeMirrors(signal: AbortSignal): Promise<void> {
    const completed = this.jobs.map((job) =>
      this.qmp.waitForEvent('BLOCK_JOB_COMPLETED', {
        match: (e) => e.data?.device === job,
        signal,
        timeoutMs: 60_000,
      }),
    );
    for (const job of this.jobs) await this.qmp.execute('block-job-cancel', { device: job }, { signal });
    for (const event of await Promise.all(completed)) {
      if (event.data?.error)
        throw new Error(
          `completing the copy of ${String(event.data.device)} failed: ${String(event.data.error)}`,
        );
    }
    this.jobs = [];
  }

  private async migrationFailure(status: string): Promise<Error> {
    const q = await this.qmp.execute<QueryMigrate>('query-migrate').catch(() => ({}) as QueryMigrate);
    return new Error(`QEMU's migration ended ${status}${q['error-desc'] ? `: ${q['error-desc']}` : ''}`);
  }

  /** Before the commit, anything failed: stop the migration and the mirrors, drop the destination's
   *  nodes, and make sure the guest runs here. Best effort, each step on its own. What it undoes is found
   *  by name (`migrate-*`), so a restarted xenosd can undo a migration another process started. */
  async rollBack(): Promise<void> {
    const opts = { timeoutMs: 10_000 };
    const step = (fn: () => Promise<unknown>) =>
      fn().then(
        () => undefined,
        () => undefined,
      );
    const query = () =>
      this.qmp.execute<QueryMigrate>('query-migrate', undefined, opts).catch(() => ({}) as QueryMigrate);
    if (ACTIVE.has((await query()).status ?? '')) {
      await step(() => this.qmp.execute('migrate_cancel', undefined, opts));
      for (let i = 0; i < 100 && ACTIVE.has((await query()).status ?? ''); i++) await sleep(50);
    }
    const ours = async () =>
      (await this.qmp.execute<{ device: string }[]>('query-block-jobs', undefined, opts).catch(() => []))
        .map((j) => j.device)
        .filter((d) => d.startsWith(MIGRATE_PREFIX));
    for (const job of await ours()) {
      await step(() => this.qmp.execute('block-job-cancel', { device: job, force: true }, opts));
    }
    for (let i = 0; i < 100 && (await ours()).length; i++) await sleep(50);
    this.jobs = [];
    const nodes = await this.qmp
      .execute<{ 'node-name': string }[]>('query-named-block-nodes', { flat: true }, opts)
      .catch(() => []);
    for (const n of nodes.filter((x) => x['node-name'].startsWith(MIGRATE_PREFIX))) {
      await step(() => this.qmp.execute('blockdev-del', { 'node-name': n['node-name'] }, opts));
    }
    const { status } = await this.qmp
      .execute<{ status: string }>('query-status', undefined, opts)
      .catch(() => ({ status: 'unknown' }));
    if (status !== 'running') await step(() => this.qmp.execute('cont', undefined, opts));
  }

  /** Stops the waits of this migration (its QMP connection stays: it is the driver's). */
  close(): void {
    this.abort(new Error(`migration of ${this.id} ended`));
  }

  /** Calls `fn` every POLL_MS until stopped (failures of one call are skipped: progress is a report). */
  private poll(fn: () => Promise<void>, signal: AbortSignal) {
    let stopped = false;
    void (async () => {
      while (!stopped && !signal.aborted) {
        await fn().catch(() => {});
        await sleep(POLL_MS).catch(() => {});
      }
    })();
    return { stop: () => (stopped = true) };
  }
}

/** A guest an outgoing migration left stopped here, that no migration drives any more (xenosd restarted
 *  or the move was rolled back): completed but not committed (`postmigrate`), or stuck mid-way (QEMU
 *  waits at `pre-switchover` for a `migrate-continue` that will never come). Undo it and run the guest.
 *  A destination's copy (`inmigrate`) and a running guest are left alone. */
export async function resumeAfterMigration(qmp: MigrationQmp, id: string): Promise<boolean> {
  const { status } = await qmp.execute<{ status: string }>('query-status');
  if (status === 'running' || status === 'inmigrate' || status === 'prelaunch') return false;
  const migration = await qmp.execute<QueryMigrate>('query-migrate').catch(() => ({}) as QueryMigrate);
  if (status !== 'postmigrate' && !ACTIVE.has(migration.status ?? '')) return false;
  await new MigrationMonitor(qmp, id).rollBack();
  return true;
}
