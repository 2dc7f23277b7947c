// Whether a ServiceMigration can be made, and where to, table-driven over a real store, the real
// placement and liveness (membership states set by the test) and the real process driver's capabilities:
// each way it cannot is a TerminalError with its reason and the field; an empty target is picked by
// placement, never the source nor a cordoned host.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { plan } from '../../../controllers/servicemigration/validate.ts';
import type { HostLiveness } from '../../../src/cluster/liveness.ts';
import type { Placement } from '../../../src/cluster/placement.ts';
import { ProcessDriver } from '../../../src/drivers/process/process-driver.ts';
import type { XObject } from '../../../src/model/object.ts';
import type { ServiceMigration } from '../../../src/model/service-migration.ts';
import { TerminalError } from '../../../src/reconcile/errors.ts';
import type { SqliteStore } from '../../../src/store/sqlite-store.ts';
import type { ScriptedMembership } from '../../cluster/scripted-membership.ts';
import { type ClusterFixture, clusterFixture, obj, peerOf } from '../cluster-fixture.ts';

describe('planning a migration', () => {
  let cluster: ClusterFixture;
  let store: SqliteStore;
  let membership: ScriptedMembership;
  let liveness: HostLiveness;
  let placement: Placement;
  let driver: ProcessDriver;
  let dir: string;
  let addHost: ClusterFixture['addHost'];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xenos-plan-'));
    cluster = clusterFixture('a');
    ({ store, membership, liveness, placement, addHost } = cluster);
    driver = new ProcessDriver({}, { dataDir: dir });
    for (const h of ['a', 'b', 'c']) addHost(h);
    store.create(obj('ServiceInstance', 'web-1', { templateRef: { name: 'web' }, host: 'a' }));
  });
  afterEach(() => {
    cluster.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function migration(spec: Record<string, unknown>, name = 'm'): ServiceMigration {
    return store.create(
      obj('ServiceMigration', name, { instanceRef: { name: 'web-1' }, ...spec }),
    ) as ServiceMigration;
  }

  const planOf = (m: ServiceMigration) =>
    plan({ store, driver, placement, isLive: (h) => liveness.isLive(h) }, m, 'a');

  function refusal(m: ServiceMigration): { reason: string; message: string } {
    try {
      planOf(m);
    } catch (err) {
      expect(err).toBeInstanceOf(TerminalError);
      return { reason: (err as TerminalError).reason, message: (err as Error).message };
    }
    throw new Error('planned, not refused');
  }

  it('plans a move to the asked host, cold for the process driver', () => {
    const p = planOf(migration({ targetHost: 'b' }));
    // No mode asked: the driver may still choose per domain (Xen: PVH live, PV cold).
    expect(p).toMatchObject({ target: 'b', mode: 'cold', auto: true });
    expect(planOf(migration({ targetHost: 'b', mode: 'Cold' }, 'm2'))).toMatchObject({
      mode: 'cold',
      auto: false,
    });
  });

  it('picks a target by placement when none is asked: never the source, nor a cordoned host', () => {
    store.update({
      ...store.get({ kind: 'Host', namespace: '', name: 'b' })!,
      spec: { unschedulable: true },
    });
    expect(planOf(migration({})).target).toBe('c');
    store.update({
      ...store.get({ kind: 'Host', namespace: '', name: 'c' })!,
      spec: { unschedulable: true },
    });
    const why = refusal(migration({}, 'm2'));
    expect(why.reason).toBe('NoTarget');
    expect(why.message).toMatch(/a is the source.*b is cordoned.*c is cordoned/);
  });

  it.each([
    [{ targetHost: 'a' }, 'TargetIsSource', /spec\.targetHost: the instance already runs on a/],
    [{ targetHost: 'zz' }, 'TargetNotFound', /spec\.targetHost: there is no Host zz/],
    [
      { targetHost: 'b', mode: 'Live' },
      'ModeUnsupported',
      /spec\.mode: the process driver cannot migrate live/,
    ],
  ])('refuses %j: %s', (spec, reason, message) => {
    const why = refusal(migration(spec));
    expect(why.reason).toBe(reason);
    expect(why.message).toMatch(message);
  });

  it('refuses a target that is dead, cordoned or runs another driver', () => {
    membership.set(peerOf('b'), 'dead');
    expect(refusal(migration({ targetHost: 'b' }, 'm1')).reason).toBe('TargetNotReady');
    addHost('d', { cordoned: true });
    expect(refusal(migration({ targetHost: 'd' }, 'm2'))).toMatchObject({
      reason: 'TargetUnfit',
      message: expect.stringMatching(/d is cordoned/),
    });
    addHost('e', { drivers: ['qemu'] });
    expect(refusal(migration({ targetHost: 'e' }, 'm3'))).toMatchObject({
      reason: 'DriverMismatch',
      message: expect.stringMatching(/host e has no process driver \(it has qemu\)/),
    });
  });

  it('refuses a missing instance, one bound elsewhere, and one another migration moves', () => {
    const gone = store.create(
      obj('ServiceMigration', 'g', { instanceRef: { name: 'nope' }, targetHost: 'b' }),
    );
    expect(refusal(gone as ServiceMigration).reason).toBe('InstanceNotFound');
    const other = migration({ targetHost: 'b' }, 'first');
    store.update({ ...other, status: { phase: 'Running' } } as XObject, { subresource: 'status' });
    expect(refusal(migration({ targetHost: 'c' }, 'second')).reason).toBe('AlreadyMoving');
    const inst = store.get({ kind: 'ServiceInstance', namespace: 'default', name: 'web-1' })!;
    store.update({ ...inst, spec: { ...inst.spec, host: 'b' } });
    expect(refusal(migration({ targetHost: 'c' }, 'third')).reason).toBe('InstanceNotHere');
  });
});
