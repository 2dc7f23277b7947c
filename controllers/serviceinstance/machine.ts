// The lifecycle of one domain as an xstate v5 machine: one actor per ServiceInstance on this host.
// The machine is pure: it decides, and every action on the world (prepare the domain's files, start it,
// stop it, destroy it, watch it and run its health checks) is an invoked actor that the controller
// provides (`domainMachine.provide({ actors })`), so tests swap them for fakes.
//
//   pending ─► preparing ─► starting ─► running{unready ⇄ ready} ─► stopping ─► stopped
//                 ▲             ▲           │ exit / crash                          │
//                 │             └─ failed ◄─┘ (restart after a backoff)             │
//                 └──── restarting ◄─ spec change that changes the domain           │
//   any state ── DELETE ─► deleting ─► deleted (final)            START / spec ─────┘
//
// "creating" of the issue is folded into `preparing`: the Driver interface's `prepare` creates the domain
// (its files and disks) and `startDomain` runs it. A `stalled` state holds a domain whose spec the driver
// rejected as invalid (terminal): it waits for a new spec instead of retrying.
//
// Run strategies (KubeVirt's semantics):
//  - Always: keep it running; restart whenever it stops, whatever the exit code.
//  - RerunOnFailure: start it; restart only when it fails (non-zero exit, killed, start error). A clean
//    exit stays stopped (DomainRunning=False, reason Completed) until the spec changes the domain.
//  - Manual: start it once when the instance is created; never restart automatically. Later starts and
//    stops only by explicit request (START / STOP events; the controller maps them from the
//    `xenos.io/requested-state` annotation).
//  - Halted: stop it and keep it stopped.
// Restart backoff doubles from `backoffBaseMs` to `backoffMaxMs` and is reset once the domain has run
// healthy for `stableAfterMs` (Kubernetes' CrashLoopBackOff: 10 s doubling to 5 min, reset after 10 min).

import { assign, emit, fromCallback, fromPromise, setup } from 'xstate';
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
  | { type: 'UNHEALTHY'; message: string };

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

function notProvided(name: string): never {
  throw new Error(`domain machine: actor "${name}" was not provided; use domainMachine.provide({ actors })`);
}

function errorOf(
  err: unknown,
  fallbackReason: string,
): { reason: string; message: string; terminal: boolean } {
  if (err instanceof DomainActionError)
    return { reason: err.reason, message: err.message, terminal: err.terminal };
  return {
    reason: fallbackReason,
    message: err instanceof Error ? err.message : String(err),
    terminal: false,
  };
}

function nextBackoff(current: number, o: MachineOptions): number {
  return Math.min(Math.max(current * 2, o.backoffBaseMs), o.backoffMaxMs);
}

function exitDescription(d: DomainInfo): string {
  if (d.signal) return `killed by ${d.signal}`;
  if (d.exitCode !== undefined) return `exit code ${d.exitCode}`;
  return d.message ?? `state ${d.state}`;
}

function exitedCleanly(d: DomainInfo): boolean {
  return d.exitCode === 0 && !d.signal && d.state !== 'crashed';
}

export const domainMachine = setup({
  types: {
    context: {} as DomainContext,
    events: {} as DomainEvent,
    input: {} as DomainMachineInput,
    emitted: {} as DomainEmitted,
  },
  actors: {
    /** driver.prepare: the domain's files and disks from the template image. */
    prepareDomain: fromPromise<DomainInfo, { spec: DomainSpec }>(async () => notProvided('prepareDomain')),
    /** driver.startDomain: run it (never a second copy). */
    startDomain: fromPromise<DomainInfo, { spec: DomainSpec }>(async () => notProvided('startDomain')),
    /** driver.stopDomain: politely, then forced. */
    stopDomain: fromPromise<DomainInfo | undefined, { id: string }>(async () => notProvided('stopDomain')),
    /** driver.stopDomain + driver.destroy: nothing of the domain is left. */
    destroyDomain: fromPromise<void, { id: string }>(async () => notProvided('destroyDomain')),
    /** Watches the running domain: sends EXITED when it stops, HEALTHY/UNHEALTHY from its health checks. */
    watchDomain: fromCallback<DomainEvent, WatchInput>(() => notProvided('watchDomain')),
  },
  delays: {
    backoff: ({ context }) => context.backoffMs,
    stable: ({ context }) => context.options.stableAfterMs,
  },
  guards: {
    adopted: ({ context }) => context.domain?.state === 'running',
    /** A domain found stopped that its strategy does not restart (Manual, or RerunOnFailure after exit 0). */
    adoptedAtRest: ({ context }) => {
      const d = context.domain;
      if (!d || (d.state !== 'stopped' && d.state !== 'crashed')) return false;
      const s = context.desired.runStrategy;
      return s === 'Manual' || (s === 'RerunOnFailure' && exitedCleanly(d));
    },
    wantsRunning: ({ context }) => {
      const s = context.desired.runStrategy;
      if (s === 'Halted') return false;
      if (s === 'Manual') return context.manualRunning;
      return true;
    },
    /** Leave `stopped` on its own: Always/RerunOnFailure after being halted or stopped by request. */
    shouldLeaveStopped: ({ context }) => {
      const s = context.desired.runStrategy;
      if (s === 'Always') return true;
      if (s === 'RerunOnFailure') return context.stopReason !== 'Completed';
      return false;
    },
    haltRequested: ({ context }) =>
      context.desired.runStrategy === 'Halted' ||
      (context.desired.runStrategy === 'Manual' && !context.manualRunning),
    specChanged: ({ context }) =>
      context.appliedHash !== undefined && context.appliedHash !== context.desired.hash,
    manual: ({ context }) => context.desired.runStrategy === 'Manual',
    restartAfterExit: ({ context, event }) => {
      if (event.type !== 'EXITED') return false;
      const s = context.desired.runStrategy;
      if (s === 'Always') return true;
      if (s === 'RerunOnFailure') return !exitedCleanly(event.domain);
      return false;
    },
    exitedCleanly: ({ event }) => event.type === 'EXITED' && exitedCleanly(event.domain),
    terminalError: ({ event }) => {
      const err = (event as { error?: unknown }).error;
      return err instanceof DomainActionError && err.terminal;
    },
  },
  actions: {
    assignDesired: assign(({ context, event }) => {
      if (event.type !== 'SPEC') return {};
      // A domain-changing spec makes a completed RerunOnFailure domain run again.
      const stopReason =
        context.stopReason === 'Completed' && event.desired.hash !== context.appliedHash
          ? undefined
          : context.stopReason;
      return { desired: event.desired, stopReason };
    }),
    assignApplied: assign(({ context }) => ({ appliedHash: context.desired.hash, error: undefined })),
    assignDomain: assign(({ event }) => {
      const out = (event as { output?: DomainInfo }).output;
      return out ? { domain: out } : {};
    }),
    assignActionError: assign(({ event }) => ({
      error: errorOf((event as { error?: unknown }).error, 'ActionFailed'),
    })),
    assignExit: assign(({ event }) => {
      if (event.type !== 'EXITED') return {};
      return { domain: event.domain, lastExitCode: event.domain.exitCode, lastSignal: event.domain.signal };
    }),
    countRestart: assign(({ context }) => ({
      restarts: context.restarts + 1,
    })),
    growBackoff: assign(({ context }) => ({ backoffMs: nextBackoff(context.backoffMs, context.options) })),
    resetBackoff: assign(({ context }) => ({ backoffMs: context.options.backoffBaseMs / 2 })),
    assignHealth: assign(({ event }) => {
      if (event.type === 'HEALTHY') return { healthMessage: event.message };
      if (event.type === 'UNHEALTHY') return { healthMessage: event.message };
      return {};
    }),
    requestStart: assign({ manualRunning: true, stopReason: undefined }),
    requestStop: assign({ manualRunning: false }),
    stoppedBecause: assign((_, params: { reason: StopReason }) => ({ stopReason: params.reason })),
    clearStopReason: assign({ stopReason: undefined }),
    emitCreated: emit(({ context }) => ({
      type: 'record' as const,
      eventType: 'Normal' as const,
      reason: 'Created',
      message: `Created domain ${context.desired.spec.id}`,
    })),
    emitStarted: emit(({ context }) => ({
      type: 'record' as const,
      eventType: 'Normal' as const,
      reason: 'Started',
      message: `Started domain ${context.desired.spec.id}${context.domain?.pid ? ` (pid ${context.domain.pid})` : ''}`,
    })),
    emitAdopted: emit(({ context }) => ({
      type: 'record' as const,
      eventType: 'Normal' as const,
      reason: 'Adopted',
      message: `Adopted running domain ${context.desired.spec.id}${context.domain?.pid ? ` (pid ${context.domain.pid})` : ''}`,
    })),
    emitReady: emit(({ context }) => ({
      type: 'record' as const,
      eventType: 'Normal' as const,
      reason: 'Ready',
      message: `Domain ${context.desired.spec.id} is ready${context.healthMessage ? `: ${context.healthMessage}` : ''}`,
    })),
    emitUnhealthy: emit(({ context }) => ({
      type: 'record' as const,
      eventType: 'Warning' as const,
      reason: 'Unhealthy',
      message: `Health check failed: ${context.healthMessage ?? 'no detail'}`,
    })),
    emitExited: emit(({ context, event }) => ({
      type: 'record' as const,
      eventType:
        event.type === 'EXITED' && exitedCleanly(event.domain) ? ('Normal' as const) : ('Warning' as const),
      reason: event.type === 'EXITED' && exitedCleanly(event.domain) ? 'Completed' : 'Failed',
      message: `Domain ${context.desired.spec.id} stopped: ${event.type === 'EXITED' ? exitDescription(event.domain) : 'unknown'}`,
    })),
    emitActionFailed: emit(({ context }) => ({
      type: 'record' as const,
      eventType: 'Warning' as const,
      reason: 'Failed',
      message: context.error?.message ?? 'action on the domain failed',
    })),
    emitBackOff: emit(({ context }) => ({
      type: 'record' as const,
      eventType: 'Warning' as const,
      reason: 'BackOff',
      message: `Back-off ${Math.round(context.backoffMs / 100) / 10}s restarting failed domain ${context.desired.spec.id}`,
    })),
    emitKilling: emit(({ context }) => ({
      type: 'record' as const,
      eventType: 'Normal' as const,
      reason: 'Killing',
      message: `Stopping domain ${context.desired.spec.id}`,
    })),
  },
}).createMachine({
  id: 'domain',
  context: ({ input }) => {
    const options = { ...DEFAULT_MACHINE_OPTIONS, ...input.options };
    return {
      desired: input.desired,
      domain: input.adopted,
      appliedHash: input.adopted?.state === 'running' ? (input.adoptedHash ?? input.desired.hash) : undefined,
      manualRunning: input.manualRunning ?? true,
      adoptedReady: input.adoptedReady ?? false,
      restarts: input.restarts ?? 0,
      backoffMs: options.backoffBaseMs / 2,
      options,
    };
  },
  initial: 'pending',
  on: {
    DELETE: { target: '.deleting' },
    SPEC: { actions: 'assignDesired' },
    START: { actions: 'requestStart' },
    STOP: { actions: 'requestStop' },
  },
  states: {
    pending: {
      always: [
        {
          guard: ({ context }) => context.domain?.state === 'running' && context.adoptedReady,
          target: 'running.ready',
          actions: 'emitAdopted',
        },
        { guard: 'adopted', target: 'running', actions: 'emitAdopted' },
        {
          guard: 'adoptedAtRest',
          target: 'stopped',
          actions: [
            assign(({ context }) => ({
              appliedHash: context.desired.hash,
              lastExitCode: context.domain?.exitCode,
              stopReason:
                context.domain && exitedCleanly(context.domain)
                  ? ('Completed' as const)
                  : ('Exited' as const),
            })),
          ],
        },
        { guard: 'wantsRunning', target: 'preparing' },
        { target: 'stopped', actions: { type: 'stoppedBecause', params: { reason: 'Halted' } } },
      ],
    },
    preparing: {
      invoke: {
        src: 'prepareDomain',
        input: ({ context }) => ({ spec: context.desired.spec }),
        onDone: { target: 'starting', actions: ['assignDomain', 'emitCreated'] },
        onError: [
          { guard: 'terminalError', target: 'stalled', actions: ['assignActionError', 'emitActionFailed'] },
          { target: 'failed', actions: ['assignActionError', 'emitActionFailed'] },
        ],
      },
    },
    starting: {
      entry: 'clearStopReason',
      invoke: {
        src: 'startDomain',
        input: ({ context }) => ({ spec: context.desired.spec }),
        onDone: { target: 'running', actions: ['assignDomain', 'assignApplied', 'emitStarted'] },
        onError: [
          { guard: 'terminalError', target: 'stalled', actions: ['assignActionError', 'emitActionFailed'] },
          { target: 'failed', actions: ['assignActionError', 'emitActionFailed'] },
        ],
      },
    },
    running: {
      initial: 'unready',
      invoke: {
        src: 'watchDomain',
        input: ({ context }) => ({
          spec: context.desired.spec,
          domain: context.domain,
          healthCheck: context.desired.healthCheck,
        }),
      },
      always: [
        { guard: 'haltRequested', target: 'stopping' },
        { guard: 'specChanged', target: 'restarting' },
      ],
      on: {
        EXITED: [
          { guard: 'restartAfterExit', target: 'failed', actions: ['assignExit', 'emitExited'] },
          {
            guard: 'exitedCleanly',
            target: 'stopped',
            actions: [
              'assignExit',
              'emitExited',
              { type: 'stoppedBecause', params: { reason: 'Completed' } },
            ],
          },
          {
            target: 'stopped',
            actions: ['assignExit', 'emitExited', { type: 'stoppedBecause', params: { reason: 'Exited' } }],
          },
        ],
      },
      states: {
        unready: {
          on: {
            HEALTHY: { target: 'ready', actions: ['assignHealth', 'emitReady'] },
            UNHEALTHY: { actions: 'assignHealth' },
          },
        },
        ready: {
          // Healthy for a while: the next crash starts again from the shortest backoff.
          after: { stable: { actions: 'resetBackoff' } },
          on: {
            UNHEALTHY: { target: 'unready', actions: ['assignHealth', 'emitUnhealthy'] },
            HEALTHY: { actions: 'assignHealth' },
          },
        },
      },
    },
    stopping: {
      entry: 'emitKilling',
      invoke: {
        src: 'stopDomain',
        input: ({ context }) => ({ id: context.desired.spec.id }),
        onDone: [
          {
            guard: 'manual',
            target: 'stopped',
            actions: ['assignDomain', { type: 'stoppedBecause', params: { reason: 'StoppedByRequest' } }],
          },
          {
            target: 'stopped',
            actions: ['assignDomain', { type: 'stoppedBecause', params: { reason: 'Halted' } }],
          },
        ],
        onError: { target: 'failed', actions: ['assignActionError', 'emitActionFailed'] },
      },
    },
    restarting: {
      entry: 'emitKilling',
      invoke: {
        src: 'stopDomain',
        input: ({ context }) => ({ id: context.desired.spec.id }),
        onDone: { target: 'preparing', actions: 'assignDomain' },
        onError: { target: 'failed', actions: ['assignActionError', 'emitActionFailed'] },
      },
    },
    failed: {
      entry: ['growBackoff', 'emitBackOff'],
      always: {
        guard: 'haltRequested',
        target: 'stopped',
        actions: { type: 'stoppedBecause', params: { reason: 'Halted' } },
      },
      after: { backoff: { target: 'preparing', actions: 'countRestart' } },
    },
    stalled: {
      // The driver rejected the spec itself: wait for a spec that changes the domain.
      on: {
        SPEC: [
          {
            guard: ({ context, event }) => event.desired.hash !== context.desired.hash,
            target: 'pending',
            actions: 'assignDesired',
          },
          { actions: 'assignDesired' },
        ],
      },
    },
    stopped: {
      always: { guard: 'shouldLeaveStopped', target: 'preparing' },
      on: {
        START: { target: 'preparing', actions: 'requestStart' },
      },
    },
    deleting: {
      entry: 'emitKilling',
      invoke: {
        src: 'destroyDomain',
        input: ({ context }) => ({ id: context.desired.spec.id }),
        onDone: { target: 'deleted', actions: assign({ domain: undefined }) },
        onError: { target: 'deleteFailed', actions: ['assignActionError', 'emitActionFailed'] },
      },
      on: { SPEC: { actions: 'assignDesired' }, START: {}, STOP: {}, DELETE: {} },
    },
    deleteFailed: {
      // Retry the teardown with backoff; the finalizer keeps the instance until it succeeds.
      entry: 'growBackoff',
      after: { backoff: { target: 'deleting' } },
      on: { START: {}, STOP: {} },
    },
    deleted: { type: 'final' },
  },
});

export type DomainMachine = typeof domainMachine;
