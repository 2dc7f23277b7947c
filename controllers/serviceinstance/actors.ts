// The domain machine's actors for a real Driver: every call takes the actor's AbortSignal (aborted when
// the machine leaves the state or the actor stops) plus a timeout; driver errors that say the spec can
// never work become terminal DomainActionErrors. The watcher polls `inspect` for the domain's end and
// runs the template's health check with Kubernetes' thresholds (periodSeconds, failureThreshold, ...).

import { fromCallback, fromPromise } from 'xstate';
import type { DomainInfo, DomainSpec, Driver } from '../../src/drivers/driver.ts';
import {
  DriverError,
  InvalidDomainSpecError,
  ParameterReferenceError,
  ParameterValueError,
} from '../../src/drivers/errors.ts';
import { healthTargetFor, probeHealth } from '../../src/drivers/health.ts';
import type { Log } from '../../src/log/logger.ts';
import type { HealthCheckSpec } from '../../src/model/service-template.ts';
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
      watch(driver, input, sendBack, abort.signal, pollMs).catch((err) => {
        if (!abort.signal.aborted) log.error({ err: err }, `watching domain ${input.spec.id} failed`);
      });
      return () => abort.abort();
    }),
  };
}

/** How long to wait before believing an end that has no exit status yet. */
const UNSETTLED_RECHECK_MS = 200;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** First delay between startup probes (doubling up to STARTUP_PROBE_MAX_MS until the first success). */
const STARTUP_PROBE_FIRST_MS = 50;
/** Longest delay between startup probes. Doubling on to the period left a service that came up after
 *  400 ms found only at 750 ms (and one up after 800 ms at 1.55 s); a refused connection costs little. */
const STARTUP_PROBE_MAX_MS = 200;

/** Polls the domain until it is no longer running (then EXITED) and runs health checks meanwhile. */
async function watch(
  driver: Driver,
  input: WatchInput,
  sendBack: (ev: DomainEvent) => void,
  signal: AbortSignal,
  pollMs: number,
): Promise<void> {
  const id = input.spec.id;
  const check: HealthCheckSpec | undefined = input.healthCheck;
  if (!check) sendBack({ type: 'HEALTHY', message: 'running (no health check)' });
  const periodMs = (check?.periodSeconds ?? 10) * 1000;
  const successThreshold = check?.successThreshold ?? 1;
  const failureThreshold = check?.failureThreshold ?? 3;
  let nextProbe = Date.now() + (check?.initialDelaySeconds ?? 0) * 1000;
  const firstProbeAt = nextProbe;
  let successes = 0;
  let failures = 0;
  let reported: boolean | undefined;
  let startupDelayMs = STARTUP_PROBE_FIRST_MS;
  let lastStartupMessage: string | undefined;
  let info: DomainInfo | undefined = input.domain;
  let unsettledOnce = false;
  let inspectedAt = Number.NEGATIVE_INFINITY;

  while (!signal.aborted) {
    // Ask the driver once per poll; the startup probes in between use the last answer (a probe of a
    // domain that ended meanwhile fails, and the next poll sees the end).
    let current: DomainInfo | undefined = info;
    if (info === undefined || unsettledOnce || Date.now() - inspectedAt >= pollMs) {
      inspectedAt = Date.now();
      try {
        current = await driver.inspect(id, { signal });
      } catch {
        if (signal.aborted) return;
        // Cannot tell right now (e.g. a transient I/O error): try again at the next poll.
        current = info;
      }
    }
    if (signal.aborted) return;
    if (current?.state !== 'running') {
      // An end without an exit status (or a domain missing from the driver) may be a moment too early:
      // the supervisor writes the status just after its child ends. Look once more before deciding.
      const settled =
        current !== undefined && (current.exitCode !== undefined || current.signal !== undefined);
      if (!settled && !unsettledOnce) {
        unsettledOnce = true;
        await sleep(UNSETTLED_RECHECK_MS, signal);
        continue;
      }
      sendBack({
        type: 'EXITED',
        domain: current ?? {
          ...(info ?? {
            id,
            driver: driver.name,
            instance: input.spec.instance,
            restartCount: 0,
            endpoints: [],
          }),
          state: 'crashed',
          message: `domain ${id} disappeared from the driver`,
        },
      });
      return;
    }
    unsettledOnce = false;
    info = current;
    if (check && Date.now() >= nextProbe) {
      // Until the first success, probe on a short delay (like a Kubernetes startup probe), so Ready
      // follows the service's start by tens of ms instead of a whole period; after it, once per period.
      nextProbe = Date.now() + (reported === undefined ? Math.min(periodMs, startupDelayMs) : periodMs);
      startupDelayMs = Math.min(startupDelayMs * 2, STARTUP_PROBE_MAX_MS);
      const result = await probeHealth(check, healthTargetFor(driver, current), { signal }).catch((err) => {
        if (signal.aborted) throw err;
        return { ok: false, message: err instanceof Error ? err.message : String(err) };
      });
      if (result.ok) {
        successes++;
        failures = 0;
        if (reported !== true && successes >= successThreshold) {
          reported = true;
          sendBack({ type: 'HEALTHY', message: result.message });
        }
      } else {
        failures++;
        successes = 0;
        if (reported === undefined) {
          // Before the first success: report a failure's message when it changes (no transition), but
          // only once probing has lasted a period, when a periodic probe would have seen it. The first
          // quick probes of a starting service fail as a rule; reporting them wrote one more status
          // (and a Ready=False flicker) for nearly every instance started.
          if (Date.now() - firstProbeAt >= periodMs && result.message !== lastStartupMessage) {
            sendBack({ type: 'UNHEALTHY', message: result.message });
            lastStartupMessage = result.message;
          }
        } else if (reported === true && failures >= failureThreshold) {
          reported = false;
          sendBack({ type: 'UNHEALTHY', message: result.message });
        }
      }
    }
    await sleep(check ? Math.max(1, Math.min(pollMs, nextProbe - Date.now())) : pollMs, signal);
  }
}
