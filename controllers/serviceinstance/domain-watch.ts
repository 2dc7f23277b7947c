// The watcher of a running domain (the domain machine's `watchDomain` actor): two loops side by side, so
// a slow look at the driver never holds up a health probe. One asks the driver every `pollMs` whether the
// domain still runs and sends EXITED when it has ended. The other runs the template's health check with
// Kubernetes' thresholds — from the moment the domain started, a startup probe with short retries until
// the first success (Ready follows the service's start by tens of ms, not a period), then once per period
// — and sends HEALTHY / UNHEALTHY, and HEALTH_RESTART once it has failed `restartThreshold` periods in a
// row (before the first pass, every period since the first probe counts as one failure).

import type { DomainInfo, Driver } from '../../src/drivers/driver.ts';
import { healthTargetFor, probeHealth } from '../../src/drivers/health.ts';
import type { HealthCheckSpec } from '../../src/model/service-template.ts';
import type { DomainEvent, WatchInput } from './machine-types.ts';

/** How long to wait before believing an end that has no exit status yet. */
const UNSETTLED_RECHECK_MS = 200;
/** First delay between startup probes (growing ×1.5 up to STARTUP_PROBE_MAX_MS until the first success). */
const STARTUP_PROBE_FIRST_MS = 50;
/** Longest delay between startup probes. Growing on to the period left a service that came up after
 *  400 ms found only at 750 ms (and one up after 800 ms at 1.55 s); a refused connection costs little. */
const STARTUP_PROBE_MAX_MS = 200;

type Send = (ev: DomainEvent) => void;

/** Watches until the domain ends (EXITED sent) or `signal` aborts. */
export async function watchDomain(
  driver: Driver,
  input: WatchInput,
  sendBack: Send,
  signal: AbortSignal,
  pollMs: number,
): Promise<void> {
  const ended = new AbortController();
  const probing = AbortSignal.any([signal, ended.signal]);
  const prober = input.healthCheck
    ? probeLoop(driver, input, input.healthCheck, sendBack, probing).catch(() => {})
    : Promise.resolve(sendBack({ type: 'HEALTHY', message: 'running (no health check)' }));
  try {
    await untilEnded(driver, input, sendBack, signal, pollMs);
  } finally {
    ended.abort();
    await prober;
  }
}

/** Polls the driver until the domain is no longer running, then sends EXITED. */
async function untilEnded(
  driver: Driver,
  input: WatchInput,
  sendBack: Send,
  signal: AbortSignal,
  pollMs: number,
): Promise<void> {
  const id = input.spec.id;
  let info: DomainInfo | undefined = input.domain;
  let unsettledOnce = false;
  // Just started (or adopted) with `info` in hand: the first look is a poll later.
  if (info) await sleep(pollMs, signal);
  while (!signal.aborted) {
    let current: DomainInfo | undefined;
    try {
      current = await driver.inspect(id, { signal });
    } catch {
      if (signal.aborted) return;
      // Cannot tell right now (e.g. a transient I/O error): try again at the next poll.
      current = info;
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
      const gone: DomainInfo = {
        ...(info ?? {
          id,
          driver: driver.name,
          instance: input.spec.instance,
          restartCount: 0,
          endpoints: [],
        }),
        state: 'crashed',
        message: `domain ${id} disappeared from the driver`,
      };
      sendBack({ type: 'EXITED', domain: current ?? gone });
      return;
    }
    unsettledOnce = false;
    info = current;
    await sleep(pollMs, signal);
  }
}

/** Runs the health check: startup probes until the first success, then one per period. */
async function probeLoop(
  driver: Driver,
  input: WatchInput,
  check: HealthCheckSpec,
  sendBack: Send,
  signal: AbortSignal,
): Promise<void> {
  const info = input.domain ?? (await driver.inspect(input.spec.id, { signal }));
  if (!info) return; // the other loop reports the end
  const target = healthTargetFor(driver, info);
  const periodMs = (check.periodSeconds ?? 10) * 1000;
  const successThreshold = check.successThreshold ?? 1;
  const failureThreshold = check.failureThreshold ?? 3;
  const restartThreshold = check.restartThreshold;
  const firstProbeAt = Date.now() + (check.initialDelaySeconds ?? 0) * 1000;
  let startupDelayMs = STARTUP_PROBE_FIRST_MS;
  let successes = 0;
  let failures = 0;
  let reported: boolean | undefined;
  let lastStartupMessage: string | undefined;
  await sleep(firstProbeAt - Date.now(), signal);
  while (!signal.aborted) {
    // Until the first success, probe on a short delay (a Kubernetes startup probe); after it, per period.
    const next = Date.now() + (reported === undefined ? Math.min(periodMs, startupDelayMs) : periodMs);
    startupDelayMs = Math.min(Math.round(startupDelayMs * 1.5), STARTUP_PROBE_MAX_MS);
    const result = await probeHealth(check, target, { signal }).catch((err) => {
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
      const failedPeriods =
        reported === undefined ? Math.floor((Date.now() - firstProbeAt) / periodMs) : failures;
      if (restartThreshold !== undefined && failedPeriods >= restartThreshold) {
        sendBack({
          type: 'HEALTH_RESTART',
          message: `the health check failed ${failedPeriods} times in a row (restartThreshold ${restartThreshold}): ${result.message}`,
        });
        return;
      }
    }
    await sleep(next - Date.now(), signal);
  }
}

/** Resolves after `ms` (at once for ms <= 0), or as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
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
