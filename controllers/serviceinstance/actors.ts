// The domain machine's actors for a real Driver: every call takes the actor's AbortSignal (aborted when
// the machine leaves the state or the actor stops) plus a timeout; driver errors that say the spec can
// never work become terminal DomainActionErrors. The watcher (domain-watch.ts) looks for the domain's end
// and runs the template's health check with Kubernetes' thresholds (periodSeconds, failureThreshold, ...).

import { fromCallback, fromPromise } from 'xstate';
import type { DomainInfo, DomainSpec, Driver } from '../../src/drivers/driver.ts';
import {
  DriverError,
  InvalidDomainSpecError,
  ParameterReferenceError,
  ParameterValueError,
} from '../../src/drivers/errors.ts';
import type { Log } from '../../src/log/logger.ts';
import { watchDomain } from './domain-watch.ts';
import { DomainActionError, type DomainEvent, type WatchInput } from './machine-types.ts';

export interface ActorTimeouts {
  prepareMs: number;
  startMs: number;
  stopMs: number;
  destroyMs: number;
}

export const DEFAULT_ACTOR_TIMEOUTS: ActorTimeouts = {
  prepareMs: 10 * 60_000,
  startMs: 2 * 60_000,
  stopMs: 60_000,
  destroyMs: 2 * 60_000,
};

export interface DomainActorsInit {
  /** How often the watcher asks the driver whether the domain still runs. Default 1000 ms. */
  pollMs?: number;
  /** Grace between the polite stop and the forced one. Default: the driver's. */
  stopGraceMs?: number;
  timeouts?: Partial<ActorTimeouts>;
}

function asActionError(err: unknown, what: string): DomainActionError {
  if (err instanceof DomainActionError) return err;
  const terminal =
    err instanceof InvalidDomainSpecError ||
    err instanceof ParameterReferenceError ||
    err instanceof ParameterValueError;
  const reason = err instanceof DriverError ? err.code : `${what}Failed`;
  const message = err instanceof Error ? err.message : String(err);
  return new DomainActionError(reason, message, { terminal, cause: err });
}

async function withTimeout<T>(
  signal: AbortSignal,
  ms: number,
  what: string,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const timeout = AbortSignal.timeout(ms);
  try {
    return await fn(AbortSignal.any([signal, timeout]));
  } catch (err) {
    if (timeout.aborted && !signal.aborted) {
      throw new DomainActionError(
        `${what}Timeout`,
        `${what} did not finish within ${Math.round(ms / 1000)} s`,
      );
    }
    throw asActionError(err, what);
  }
}

/** Stop (politely, then forced) and remove every trace of a domain. Unknown ids are fine. */
export async function teardownDomain(
  driver: Driver,
  id: string,
  options: { signal?: AbortSignal; graceMs?: number } = {},
): Promise<void> {
  await driver.stopDomain(id, { signal: options.signal, graceMs: options.graceMs });
  await driver.destroy(id, { signal: options.signal });
}

/** The actors `domainMachine.provide({ actors })` needs, backed by `driver`. */
export function domainActors(driver: Driver, log: Log, init: DomainActorsInit = {}) {
  const t = { ...DEFAULT_ACTOR_TIMEOUTS, ...init.timeouts };
  const pollMs = init.pollMs ?? 1000;
  return {
    prepareDomain: fromPromise<DomainInfo, { spec: DomainSpec }>(({ input, signal }) =>
      withTimeout(signal, t.prepareMs, 'Prepare', (s) => driver.prepare(input.spec, { signal: s })),
    ),
    startDomain: fromPromise<DomainInfo, { spec: DomainSpec }>(({ input, signal }) =>
      withTimeout(signal, t.startMs, 'Start', (s) => driver.startDomain(input.spec, { signal: s })),
    ),
    stopDomain: fromPromise<DomainInfo | undefined, { id: string }>(({ input, signal }) =>
      withTimeout(signal, t.stopMs, 'Stop', (s) =>
        driver.stopDomain(input.id, { signal: s, graceMs: init.stopGraceMs }),
      ),
    ),
    destroyDomain: fromPromise<void, { id: string }>(({ input, signal }) =>
      withTimeout(signal, t.stopMs + t.destroyMs, 'Destroy', (s) =>
        teardownDomain(driver, input.id, { signal: s, graceMs: init.stopGraceMs }),
      ),
    ),
    watchDomain: fromCallback<DomainEvent, WatchInput>(({ input, sendBack }) => {
      const abort = new AbortController();
      watchDomain(driver, input, sendBack, abort.signal, pollMs).catch((err) => {
        if (!abort.signal.aborted) log.error({ err: err }, `watching domain ${input.spec.id} failed`);
      });
      return () => abort.abort();
    }),
  };
}
