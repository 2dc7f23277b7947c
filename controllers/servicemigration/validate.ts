// Whether a ServiceMigration can be carried out, and where to: the instance exists and is bound to this
// host, no other migration of it is under way, the target (asked for, or picked by placement without the
// source) is a live, Ready host that fits the instance and runs the same driver, and the driver can move
// it the way asked. Anything else is a TerminalError with a reason: the migration fails and is not retried.

import type { Placement } from '../../src/cluster/placement.ts';
import { unfitReason } from '../../src/cluster/placement.ts';
import type { Driver } from '../../src/drivers/driver.ts';
import { SERVICE_MIGRATION } from '../../src/model/kinds.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import type { ServiceMigration } from '../../src/model/service-migration.ts';
import { TerminalError } from '../../src/reconcile/errors.ts';
import type { Store } from '../../src/store/store.ts';
import { hostNamed, instanceOf, migrationRef, namespaceOf } from './facts.ts';

export interface Plan {
  instance: ServiceInstance;
  target: string;
  /** The mode the driver is expected to use (its report says which it did). */
  mode: 'live' | 'cold';
  /** No mode was asked for: the driver may choose per domain (Xen moves PVH live, PV cold). */
  auto: boolean;
}

export interface PlanComponents {
  store: Store;
  driver: Driver;
  placement: Pick<Placement, 'decide' | 'allocated'>;
  isLive(host: string): boolean;
}

export function plan(c: PlanComponents, m: ServiceMigration, self: string): Plan {
  const where = migrationRef(m);
  const instance = instanceOf(c.store, m);
  const iname = `ServiceInstance ${namespaceOf(m)}/${m.spec?.instanceRef?.name}`;
  if (!instance)
    throw new TerminalError('InstanceNotFound', `${where}: spec.instanceRef.name: ${iname} does not exist`);
  if (instance.metadata.deletionTimestamp)
    throw new TerminalError('InstanceDeleting', `${where}: ${iname} is being deleted`);
  if (instance.spec?.host !== self)
    throw new TerminalError('InstanceNotHere', `${where}: ${iname} is not bound to host ${self}`);
  const other = c.store
    .list(SERVICE_MIGRATION.kind, { namespace: namespaceOf(m) })
    .items.find(
      (o) =>
        o.metadata.uid !== m.metadata.uid &&
        o.spec?.instanceRef?.name === instance.metadata.name &&
        o.status?.phase === 'Running',
    );
  if (other)
    throw new TerminalError(
      'AlreadyMoving',
      `${where}: ${iname} is being moved by ${migrationRef(other)}; wait for it to end, then create another`,
    );
  return {
    instance,
    target: target(c, m, instance, self),
    mode: mode(c.driver, m),
    auto: (m.spec?.mode ?? 'Auto') === 'Auto',
  };
}

function target(c: PlanComponents, m: ServiceMigration, instance: ServiceInstance, self: string): string {
  const where = migrationRef(m);
  const asked = m.status?.targetHost ?? m.spec?.targetHost;
  let name = asked;
  if (!name) {
    const decision = c.placement.decide(instance, { exclude: new Map([[self, 'is the source']]) });
    if (decision.host === undefined)
      throw new TerminalError('NoTarget', `${where}: no host can take the instance: ${decision.message}`);
    name = decision.host;
  }
  const field = asked ? 'spec.targetHost: ' : `picked ${name}: `;
  if (name === self)
    throw new TerminalError('TargetIsSource', `${where}: ${field}the instance already runs on ${name}`);
  const host = hostNamed(c.store, name);
  if (!host)
    throw new TerminalError('TargetNotFound', `${where}: ${field}there is no Host ${name} in the cluster`);
  if (!c.isLive(name))
    throw new TerminalError('TargetNotReady', `${where}: ${field}host ${name} is not live`);
  // The instance's own requests (its template's are the same on every host).
  const why = unfitReason(host, instance, undefined, c.placement.allocated(name));
  if (why) throw new TerminalError('TargetUnfit', `${where}: ${field}${why}`);
  const drivers = host.status?.drivers ?? (host.status?.driver ? [host.status.driver] : []);
  if (!drivers.includes(c.driver.name))
    throw new TerminalError(
      'DriverMismatch',
      `${where}: ${field}host ${name} has no ${c.driver.name} driver (it has ${drivers.join(', ') || 'none'})`,
    );
  if (!host.status?.peerId)
    throw new TerminalError(
      'TargetNotReady',
      `${where}: ${field}host ${name} is not in the overlay (no peer id)`,
    );
  return name;
}

function mode(driver: Driver, m: ServiceMigration): 'live' | 'cold' {
  const asked = m.spec?.mode ?? 'Auto';
  const { liveMigration, coldMigration } = driver.capabilities;
  if (asked === 'Live' && !liveMigration)
    throw new TerminalError(
      'ModeUnsupported',
      `${migrationRef(m)}: spec.mode: the ${driver.name} driver cannot migrate live; ask for Cold or Auto`,
    );
  if (asked === 'Cold' && !coldMigration)
    throw new TerminalError(
      'ModeUnsupported',
      `${migrationRef(m)}: spec.mode: the ${driver.name} driver cannot migrate cold`,
    );
  if (!liveMigration && !coldMigration)
    throw new TerminalError(
      'ModeUnsupported',
      `${migrationRef(m)}: the ${driver.name} driver cannot migrate`,
    );
  return asked === 'Cold' || (asked === 'Auto' && !liveMigration) ? 'cold' : 'live';
}
