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
//   running ── health check failed restartThreshold times ─► healthRestarting ─► failed (then as a crash)
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
// A health check with `restartThreshold` makes a domain that keeps failing it count as crashed (Always
// and RerunOnFailure; Manual and Halted leave it as it is): it is stopped and restarted after the backoff.
// Restart backoff doubles from `backoffBaseMs` to `backoffMaxMs` and is reset once the domain has run
// healthy for `stableAfterMs` (Kubernetes' CrashLoopBackOff: 10 s doubling to 5 min, reset after 10 min).

import { assign, emit, fromCallback, fromPromise, setup } from 'xstate';
import type { DomainInfo, DomainSpec } from '../../src/drivers/driver.ts';
import { exitedCleanly, records } from './machine-records.ts';
import {
  DEFAULT_MACHINE_OPTIONS,
  DomainActionError,
  type DomainContext,
  type DomainEmitted,
  type DomainEvent,
  type DomainMachineInput,
  type MachineOptions,
  type StopReason,
  type WatchInput,
} from './machine-types.ts';

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
    restartsWhenUnhealthy: ({ context }) => {
      const s = context.desired.runStrategy;
      return s === 'Always' || s === 'RerunOnFailure';
    },
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
    assignHealthRestart: assign(({ event }) =>
      event.type === 'HEALTH_RESTART'
        ? { healthMessage: event.message, error: { reason: 'Unhealthy', message: event.message } }
        : {},
    ),
    assignHealth: assign(({ event }) => {
      if (event.type === 'HEALTHY') return { healthMessage: event.message };
      if (event.type === 'UNHEALTHY') return { healthMessage: event.message };
      return {};
    }),
    requestStart: assign({ manualRunning: true, stopReason: undefined }),
    requestStop: assign({ manualRunning: false }),
    stoppedBecause: assign((_, params: { reason: StopReason }) => ({ stopReason: params.reason })),
    clearStopReason: assign({ stopReason: undefined }),
    emitCreated: emit(({ context }) => records.created(context)),
    emitStarted: emit(({ context }) => records.started(context)),
    emitAdopted: emit(({ context }) => records.adopted(context)),
    emitReady: emit(({ context }) => records.ready(context)),
    emitUnhealthy: emit(({ context }) => records.unhealthy(context)),
    emitExited: emit(({ context, event }) => records.exited(context, event)),
    emitActionFailed: emit(({ context }) => records.actionFailed(context)),
    emitBackOff: emit(({ context }) => records.backOff(context)),
    emitKilling: emit(({ context }) => records.killing(context)),
    emitHealthRestart: emit(({ context }) => records.healthRestart(context)),
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
        HEALTH_RESTART: {
          guard: 'restartsWhenUnhealthy',
          target: 'healthRestarting',
          actions: ['assignHealthRestart', 'emitHealthRestart'],
        },
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
    healthRestarting: {
      // Kept failing its health check: stopped, then restarted like a crashed domain (after the backoff).
      invoke: {
        src: 'stopDomain',
        input: ({ context }) => ({ id: context.desired.spec.id }),
        onDone: { target: 'failed', actions: 'assignDomain' },
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
