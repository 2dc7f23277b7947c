// The Events a domain machine emits (Kubernetes' kubelet reasons: Created, Started, Killing, BackOff,
// Unhealthy, ...), built from its context; the controller records each against the instance.

import type { DomainInfo } from '../../src/drivers/driver.ts';
import type { DomainContext, DomainEmitted, DomainEvent } from './machine-types.ts';

/** A run that ended on its own with exit code 0. */
export function exitedCleanly(d: DomainInfo): boolean {
  return d.exitCode === 0 && !d.signal && d.state !== 'crashed';
}

function exitDescription(d: DomainInfo): string {
  if (d.signal) return `killed by ${d.signal}`;
  if (d.exitCode !== undefined) return `exit code ${d.exitCode}`;
  return d.message ?? `state ${d.state}`;
}

function record(eventType: 'Normal' | 'Warning', reason: string, message: string): DomainEmitted {
  return { type: 'record', eventType, reason, message };
}

const pid = (c: DomainContext) => (c.domain?.pid ? ` (pid ${c.domain.pid})` : '');

export const records = {
  created: (c: DomainContext) => record('Normal', 'Created', `Created domain ${c.desired.spec.id}`),
  started: (c: DomainContext) => record('Normal', 'Started', `Started domain ${c.desired.spec.id}${pid(c)}`),
  adopted: (c: DomainContext) =>
    record('Normal', 'Adopted', `Adopted running domain ${c.desired.spec.id}${pid(c)}`),
  ready: (c: DomainContext) =>
    record(
      'Normal',
      'Ready',
      `Domain ${c.desired.spec.id} is ready${c.healthMessage ? `: ${c.healthMessage}` : ''}`,
    ),
  unhealthy: (c: DomainContext) =>
    record('Warning', 'Unhealthy', `Health check failed: ${c.healthMessage ?? 'no detail'}`),
  exited: (c: DomainContext, event: DomainEvent) => {
    const clean = event.type === 'EXITED' && exitedCleanly(event.domain);
    const how = event.type === 'EXITED' ? exitDescription(event.domain) : 'unknown';
    return record(
      clean ? 'Normal' : 'Warning',
      clean ? 'Completed' : 'Failed',
      `Domain ${c.desired.spec.id} stopped: ${how}`,
    );
  },
  actionFailed: (c: DomainContext) =>
    record('Warning', 'Failed', c.error?.message ?? 'action on the domain failed'),
  backOff: (c: DomainContext) =>
    record(
      'Warning',
      'BackOff',
      `Back-off ${Math.round(c.backoffMs / 100) / 10}s restarting failed domain ${c.desired.spec.id}`,
    ),
  killing: (c: DomainContext) => record('Normal', 'Killing', `Stopping domain ${c.desired.spec.id}`),
  healthRestart: (c: DomainContext) =>
    record('Warning', 'Unhealthy', `Restarting domain ${c.desired.spec.id}: ${c.error?.message ?? ''}`),
};
