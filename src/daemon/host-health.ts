// How healthy this host is, as three Host conditions that are True when something is wrong (Kubernetes'
// node conditions, and node-problem-detector's custom check): `MemoryPressure` (MemAvailable of
// /proc/meminfo below --min-free-memory), `DiskPressure` (the data dir's filesystem has less than
// --min-free-disk free) and `HealthCheckFailing` (the operator's --health-command exited non-zero or
// timed out). Measured every --health-interval (a message says what was measured when its condition last
// changed); when a condition changes, `onChange` lets the Host
// controller write it (it is a fact of this host, like its driver's conditions) — and, with
// --auto-drain, drain the host once one has held (controllers/host/auto-drain.ts).

import { execFile } from 'node:child_process';
import { readFileSync, statfsSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';
import type { HostConditionFact } from '../drivers/driver.ts';
import type { Log } from '../log/logger.ts';
import { DISK_PRESSURE, HEALTH_CHECK_FAILING, MEMORY_PRESSURE } from '../model/host.ts';
import { formatMemoryQuantity as formatMemory } from '../model/quantity.ts';

/** What must stay free: bytes, or a share of the whole (`10%`). */
export type FreeBound = { bytes: number } | { percent: number };

export interface HostHealthInit {
  dataDir: string;
  minFreeMemory: FreeBound;
  minFreeDisk: FreeBound;
  /** A shell command: exit 0 healthy, anything else (or no exit within `commandTimeoutMs`) not. */
  command?: string;
  intervalMs: number;
  commandTimeoutMs?: number;
}

/** One measurement: bytes free and in all, of memory and of the data dir's filesystem. */
export interface HostMeasure {
  memory: { free: number; total: number };
  disk: { free: number; total: number };
  /** The health command's result (absent: no command). */
  command?: { ok: boolean; output: string };
}

export const DEFAULT_HEALTH_INTERVAL = '10s';
/** kubelet's hard eviction defaults: memory.available<100Mi, nodefs.available<10%. */
export const DEFAULT_MIN_FREE_MEMORY = '100Mi';
export const DEFAULT_MIN_FREE_DISK = '10%';
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

function boundBytes(bound: FreeBound, total: number): number {
  return 'bytes' in bound ? bound.bytes : Math.round((total * bound.percent) / 100);
}

function boundText(bound: FreeBound): string {
  return 'bytes' in bound ? formatMemory(bound.bytes) : `${bound.percent}%`;
}

function pressure(
  type: string,
  what: string,
  m: { free: number; total: number },
  bound: FreeBound,
): HostConditionFact {
  const need = boundBytes(bound, m.total);
  const low = m.free < need;
  return {
    type,
    status: low ? 'True' : 'False',
    reason: low ? `Low${what}` : `Enough${what}`,
    message: `${formatMemory(m.free)} of ${formatMemory(m.total)} ${what.toLowerCase()} free (at least ${boundText(bound)} wanted)`,
  };
}

/** The conditions of a measurement (pure). */
export function healthConditions(
  m: HostMeasure,
  bounds: Pick<HostHealthInit, 'minFreeMemory' | 'minFreeDisk' | 'command'>,
): HostConditionFact[] {
  const out = [
    pressure(MEMORY_PRESSURE, 'Memory', m.memory, bounds.minFreeMemory),
    pressure(DISK_PRESSURE, 'Disk', m.disk, bounds.minFreeDisk),
  ];
  if (m.command && bounds.command)
    out.push({
      type: HEALTH_CHECK_FAILING,
      status: m.command.ok ? 'False' : 'True',
      reason: m.command.ok ? 'HealthCommandPassed' : 'HealthCommandFailed',
      message: `--health-command ${JSON.stringify(bounds.command)}: ${m.command.output}`,
    });
  return out;
}

/** MemAvailable (what can be had without swapping), else what os.freemem says. */
function memoryNow(): { free: number; total: number } {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return { free: Number(m[1]) * 1024, total: totalmem() };
  } catch {}
  return { free: freemem(), total: totalmem() };
}

function diskNow(dir: string): { free: number; total: number } {
  const s = statfsSync(dir);
  return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
}

function runCommand(command: string, timeoutMs: number): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(
      '/bin/sh',
      ['-c', command],
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 },
      (err, stdout, stderr) => {
        const said = `${stderr}${stdout}`.trim().replace(/\s+/g, ' ').slice(0, 200);
        if (!err) return resolve({ ok: true, output: `exit 0${said ? `: ${said}` : ''}` });
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
        const how = e.killed
          ? `no exit within ${timeoutMs} ms`
          : typeof e.code === 'number'
            ? `exit ${e.code}`
            : e.message;
        resolve({ ok: false, output: `${how}${said ? `: ${said}` : ''}` });
      },
    );
  });
}

export class HostHealth {
  readonly #init: HostHealthInit;
  readonly #log: Log;
  readonly #onChange: () => void;
  #conditions: HostConditionFact[] = [];
  #timer?: NodeJS.Timeout;
  #running?: Promise<void>;
  #stopped = false;

  constructor(components: { log: Log; onChange: () => void }, init: HostHealthInit) {
    this.#log = components.log;
    this.#onChange = components.onChange;
    this.#init = init;
  }

  /** The conditions of the last measurement (none before the first). */
  get conditions(): HostConditionFact[] {
    return this.#conditions;
  }

  /** Measures at once (without holding up the start: a slow command is only late) and then every interval. */
  start(): void {
    this.#stopped = false;
    this.check().finally(() => this.#schedule());
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.check().finally(() => this.#schedule());
    }, this.#init.intervalMs);
    this.#timer.unref();
  }

  /** Measures once; tells onChange when a condition's status or reason changed. */
  check(): Promise<void> {
    this.#running = (async () => {
      const { dataDir, command } = this.#init;
      let measure: HostMeasure;
      try {
        measure = {
          memory: memoryNow(),
          disk: diskNow(dataDir),
          command: command
            ? await runCommand(command, this.#init.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS)
            : undefined,
        };
      } catch (err) {
        this.#log.warn({ err }, 'measuring the host health failed');
        return;
      }
      // A message is kept while its condition stays as it is (the figures as of the last change): a
      // status that changed with every measurement would be written at every re-read of an idle host.
      const next = healthConditions(measure, this.#init).map((c) => {
        const before = this.#conditions.find((b) => b.type === c.type);
        return before?.status === c.status && before.reason === c.reason ? before : c;
      });
      const key = (cs: HostConditionFact[]) => cs.map((c) => `${c.type}=${c.status}/${c.reason}`).join();
      const changed = key(next) !== key(this.#conditions);
      for (const c of next) {
        const before = this.#conditions.find((b) => b.type === c.type);
        if (c.status === 'True' && before?.status !== 'True') this.#log.warn(`${c.type}: ${c.message}`);
        if (c.status !== 'True' && before?.status === 'True')
          this.#log.info(`${c.type} cleared: ${c.message}`);
      }
      this.#conditions = next;
      if (changed && !this.#stopped) this.#onChange();
    })();
    return this.#running;
  }
}
