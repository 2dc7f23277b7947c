// How a ServiceInstance's status reads a domain machine's snapshot: the phase, the DomainRunning and
// Healthy conditions, restarts, exit code, endpoints — and Ready summarised from Scheduled,
// TemplateReady, DomainRunning, Healthy and, when the service reported one, ServiceHealthy.
// Phases: Pending, Scheduled, Pulling (image not on this host yet), Starting, Running, Stopping,
// Stopped, Failed, Terminating.

import type { SnapshotFrom } from 'xstate';
import {
  type Endpoint,
  REGISTERED_SOURCE,
  SERVICE_HEALTHY,
  type ServiceInstanceStatus,
} from '../../src/model/service-instance.ts';
import {
  getCondition,
  removeCondition,
  setCondition,
  summariseReady,
} from '../../src/reconcile/conditions.ts';
import type { domainMachine } from './machine.ts';

export type DomainSnapshot = SnapshotFrom<typeof domainMachine>;

export const SCHEDULED = 'Scheduled';
export const TEMPLATE_READY = 'TemplateReady';
export const DOMAIN_RUNNING = 'DomainRunning';
export const HEALTHY = 'Healthy';
/** Set on an instance re-bound off a NotReady host (controllers/host/failover.ts): from where, when, and
 *  what its domain here started from. Informational: not one of the conditions Ready depends on. */
export const FAILED_OVER = 'FailedOver';
/** Whether the last copy of its disk layer for failover (spec.failover.copyEverySeconds) reached the host
 *  that keeps it. Informational, like FailedOver. */
export const LAYER_COPIED = 'LayerCopied';

export function phaseOf(snap: DomainSnapshot): string {
  if (snap.matches('running')) return 'Running';
  if (snap.matches('preparing') || snap.matches('starting') || snap.matches('pending')) return 'Starting';
  if (snap.matches('stopping') || snap.matches('restarting') || snap.matches('healthRestarting'))
    return 'Stopping';
  if (snap.matches('stopped')) return 'Stopped';
  if (snap.matches('deleting') || snap.matches('deleteFailed') || snap.matches('deleted'))
    return 'Terminating';
  return 'Failed'; // failed (backing off), stalled
}

function domainRunning(snap: DomainSnapshot): { status: 'True' | 'False'; reason: string; message: string } {
  const c = snap.context;
  const id = c.desired.spec.id;
  if (snap.matches('running')) {
    return {
      status: 'True',
      reason: 'Running',
      message: `domain ${id} is running${c.domain?.pid ? ` (pid ${c.domain.pid})` : ''}`,
    };
  }
  if (snap.matches('failed')) {
    const why = c.error?.message ?? exitText(c.lastExitCode, c.lastSignal);
    // A start that failed says why (SandboxUnavailable, PortAllocationFailed, ...); a crash is a crash loop.
    return {
      status: 'False',
      reason: c.error?.reason ?? 'CrashLoopBackOff',
      message: `back-off ${Math.round(c.backoffMs / 100) / 10}s restarting domain ${id}: ${why}`,
    };
  }
  if (snap.matches('stalled')) {
    return {
      status: 'False',
      reason: c.error?.reason ?? 'InvalidDomainSpec',
      message: c.error?.message ?? '',
    };
  }
  if (snap.matches('stopped')) {
    const reason = c.stopReason ?? 'Stopped';
    const detail =
      reason === 'Halted'
        ? 'runStrategy is Halted'
        : reason === 'StoppedByRequest'
          ? 'stopped on request (runStrategy Manual)'
          : exitText(c.lastExitCode, c.lastSignal);
    return { status: 'False', reason, message: `domain ${id} is stopped: ${detail}` };
  }
  if (snap.matches('healthRestarting'))
    return { status: 'False', reason: 'Unhealthy', message: `stopping domain ${id}: ${c.error?.message}` };
  if (snap.matches('stopping') || snap.matches('restarting')) {
    return { status: 'False', reason: 'Stopping', message: `stopping domain ${id}` };
  }
  if (snap.matches('preparing'))
    return { status: 'False', reason: 'Preparing', message: `preparing domain ${id}` };
  if (snap.matches('starting'))
    return { status: 'False', reason: 'Starting', message: `starting domain ${id}` };
  return { status: 'False', reason: 'Terminating', message: `removing domain ${id}` };
}

function exitText(code: number | undefined, signal: string | undefined): string {
  if (signal) return `killed by ${signal}`;
  return code === undefined ? 'not running' : `exited with code ${code}`;
}

/** Write everything the machine knows into `status` (a copy the caller owns). */
export function applySnapshot(status: ServiceInstanceStatus, snap: DomainSnapshot, generation: number): void {
  const c = snap.context;
  status.phase = phaseOf(snap);
  setCondition(status, { type: DOMAIN_RUNNING, ...domainRunning(snap) }, generation);
  const running = snap.matches('running');
  if (snap.matches({ running: 'ready' })) {
    setCondition(
      status,
      { type: HEALTHY, status: 'True', reason: 'Healthy', message: c.healthMessage ?? 'healthy' },
      generation,
    );
  } else if (running) {
    setCondition(
      status,
      {
        type: HEALTHY,
        status: c.healthMessage ? 'False' : 'Unknown',
        reason: c.healthMessage ? 'Unhealthy' : 'Probing',
        message: c.healthMessage ?? 'waiting for the first health check',
      },
      generation,
    );
  } else {
    setCondition(
      status,
      { type: HEALTHY, status: 'False', reason: 'NotRunning', message: 'the domain is not running' },
      generation,
    );
  }
  status.restarts = c.restarts;
  if (c.lastExitCode !== undefined) status.lastExitCode = c.lastExitCode;
  status.domainId = c.desired.spec.id;
  if (c.domain?.disk) status.disk = { ...c.domain.disk };
  const registered = (status.endpoints ?? []).filter((e) => e.source === REGISTERED_SOURCE);
  if (running) {
    const fromTemplate: Endpoint[] = (c.domain?.endpoints ?? []).map((e) => {
      const ep: Endpoint = {
        name: e.name,
        address: e.address,
        port: e.port,
        protocol: e.protocol,
        source: 'template',
      };
      if (e.url) ep.url = e.url;
      return ep;
    });
    const names = new Set(fromTemplate.map((e) => e.name));
    status.endpoints = [...fromTemplate, ...registered.filter((e) => !names.has(e.name))];
    if (c.domain?.startedAt) status.startedAt = c.domain.startedAt;
  } else {
    // What the service registered, and its own health report, end with the domain.
    status.endpoints = [];
    removeCondition(status, SERVICE_HEALTHY);
    delete status.startedAt;
  }
}

/** Ready from the others; a ServiceHealthy condition counts once the service has reported one. */
export function summariseInstance(status: ServiceInstanceStatus, generation: number): void {
  const dependsOn = [SCHEDULED, TEMPLATE_READY, DOMAIN_RUNNING, HEALTHY];
  if (getCondition(status, SERVICE_HEALTHY)) dependsOn.push(SERVICE_HEALTHY);
  summariseReady(status, generation, {
    dependsOn,
    readyReason: 'Ready',
    readyMessage: 'the domain is running and healthy',
  });
}
