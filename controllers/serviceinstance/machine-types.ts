// The domain machine's vocabulary (machine.ts is the chart): what the controller wants of a domain
// (DesiredDomain), the machine's input, context, events and emitted records, the options of its restart
// backoff, and the error an action actor throws — kept apart so actors, conditions and tests share them
// without the chart.

import type { DomainInfo, DomainSpec } from '../../src/drivers/driver.ts';
import type { RunStrategy } from '../../src/model/service-instance.ts';
import type { HealthCheckSpec } from '../../src/model/service-template.ts';

/** The desired domain as the controller computed it from the instance and its template. */
export interface DesiredDomain {
  spec: DomainSpec;
  /** Hash of everything that changes the domain; a new hash while running means restart. */
  hash: string;
  runStrategy: RunStrategy;
  healthCheck?: HealthCheckSpec;
  generation: number;
}

export interface MachineOptions {
  backoffBaseMs: number;
  backoffMaxMs: number;
  stableAfterMs: number;
}

export const DEFAULT_MACHINE_OPTIONS: MachineOptions = {
  backoffBaseMs: 10_000,
  backoffMaxMs: 300_000,
  stableAfterMs: 600_000,
};

export interface DomainMachineInput {
  desired: DesiredDomain;
  /** A domain found already running on this host (after a coordinator restart): adopt it, start nothing. */
  adopted?: DomainInfo;
  /** The adopted domain was healthy when last observed: keep it Ready (no flicker after a coordinator
   *  restart) until its health check says otherwise. */
  adoptedReady?: boolean;
  /** The hash the adopted domain was built from, when known; unknown means "assume current". */
  adoptedHash?: string;
  /** Manual strategy: whether a start is wanted when the actor starts (default true: "start once"). */
  manualRunning?: boolean;
  /** Restarts counted so far (from the instance's status), so a coordinator restart keeps the count. */
  restarts?: number;
  options?: Partial<MachineOptions>;
}

/** Why the domain is not running, when it is stopped. */
export type StopReason = 'Halted' | 'StoppedByRequest' | 'Completed' | 'Exited' | 'Failed';

export interface DomainContext {
  desired: DesiredDomain;
  /** The hash of the domain as it was last prepared and started. */
  appliedHash?: string;
  domain?: DomainInfo;
  /** Manual strategy: whether someone asked for it to run (true at creation: "start once"). */
  manualRunning: boolean;
  /** From the input: an adopted domain starts out ready. */
  adoptedReady: boolean;
  restarts: number;
  /** The delay before the next restart. */
  backoffMs: number;
  lastExitCode?: number;
  lastSignal?: string;
  stopReason?: StopReason;
  healthMessage?: string;
  /** The last error of an action on the domain (prepare, start, stop), shown in conditions. */
  error?: { reason: string; message: string };
  options: MachineOptions;
}

export type DomainEvent =
  | { type: 'SPEC'; desired: DesiredDomain }
  | { type: 'START' }
  | { type: 'STOP' }
  | { type: 'DELETE' }
  | { type: 'EXITED'; domain: DomainInfo }
  | { type: 'HEALTHY'; message?: string }
  | { type: 'UNHEALTHY'; message: string }
  /** The health check failed `restartThreshold` times in a row: stop the domain and restart it. */
  | { type: 'HEALTH_RESTART'; message: string };

/** A Kubernetes-style Event the controller records for the instance. */
export interface DomainEmitted {
  type: 'record';
  eventType: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface WatchInput {
  spec: DomainSpec;
  domain?: DomainInfo;
  healthCheck?: HealthCheckSpec;
}

/** What an action actor that failed throws: `terminal` when retrying can never help. */
export class DomainActionError extends Error {
  readonly reason: string;
  readonly terminal: boolean;

  constructor(reason: string, message: string, opts: { terminal?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DomainActionError';
    this.reason = reason;
    this.terminal = opts.terminal ?? false;
  }
}
