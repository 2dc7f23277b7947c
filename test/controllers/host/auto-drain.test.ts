// autoDrain (controllers/host/auto-drain.ts) against a real store: a host whose degraded condition has held
// past --auto-drain-after cordons itself (spec.drain and the annotation saying why) and makes one drain
// ServiceMigration per instance bound to it — none before the time, none for instances already moving,
// a failed move tried again after DRAIN_RETRY_MS; once uncordoned it does not drain again for the same
// degradation, and a healthy host or one an operator drained is left alone.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { autoDrain, DRAIN_RETRY_MS } from '../../../controllers/host/auto-drain.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { DRAIN_LABEL } from '../../../src/model/drain.ts';
import { AUTO_DRAINED_ANNOTATION, type Host } from '../../../src/model/host.ts';
import type { XObject } from '../../../src/model/object.ts';
import type { ServiceMigration } from '../../../src/model/service-migration.ts';
import { type ClusterFixture, clusterFixture, obj } from '../cluster-fixture.ts';

const T0 = Date.parse('2026-12-05T12:00:00Z');
const AFTER = 30_000;
let cluster: ClusterFixture;

const host = () => cluster.store.get({ kind: 'Host', namespace: '', name: 'a' }) as Host;
const migrations = () => cluster.store.list('ServiceMigration').items as ServiceMigration[];
const pass = (atMs: number) =>
  autoDrain({ store: cluster.store, log: silentLogger.root, now: () => T0 + atMs }, host(), AFTER);

/** Sets host a's condition `type` (True from T0, unless `status` says otherwise). */
function degrade(type: string, status: 'True' | 'False' = 'True', at = T0) {
  const h = host();
  const conditions = (h.status?.conditions ?? []).filter((c) => c.type !== type);
  conditions.push({
    type,
    status,
    reason: status === 'True' ? 'HealthCommandFailed' : 'HealthCommandPassed',
    message: 'exit 1: disk errors',
    lastTransitionTime: new Date(at).toISOString(),
  });
  cluster.store.update({ ...h, status: { ...h.status, conditions } } as XObject, { subresource: 'status' });
}

beforeEach(() => {
  cluster = clusterFixture('a');
  for (const h of ['a', 'b']) cluster.addHost(h);
  cluster.store.create(obj('ServiceTemplate', 'web', { image: { path: '/x' } }));
  for (const name of ['web-1', 'web-2'])
    cluster.store.create(obj('ServiceInstance', name, { templateRef: { name: 'web' }, host: 'a' }));
  cluster.store.create(obj('ServiceInstance', 'elsewhere', { templateRef: { name: 'web' }, host: 'b' }));
});
afterEach(() => cluster.close());

describe('autoDrain', () => {
  it('drains once a degraded condition has held past the delay, moving each instance bound here once', () => {
    expect(pass(0)).toEqual({ drained: false, moves: [] }); // healthy
    degrade('HealthCheckFailing');
    const early = pass(10_000);
    expect(early).toMatchObject({ drained: false, moves: [] });
    expect(early.nextInMs).toBeGreaterThanOrEqual(AFTER - 10_000);
    expect(host().spec?.drain).toBeFalsy();

    const drained = pass(AFTER + 1000);
    expect(drained).toMatchObject({ drained: true, moves: ['default/web-1', 'default/web-2'] });
    expect(host().spec?.drain).toBe(true);
    expect(host().metadata.annotations?.[AUTO_DRAINED_ANNOTATION]).toBe(
      `${new Date(T0 + AFTER + 1000).toISOString()} HealthCheckFailing: exit 1: disk errors`,
    );
    expect(
      migrations().map((m) => [m.spec?.instanceRef.name, m.spec?.mode, m.metadata.labels?.[DRAIN_LABEL]]),
    ).toEqual(
      expect.arrayContaining([
        ['web-1', 'Auto', 'a'],
        ['web-2', 'Auto', 'a'],
      ]),
    );
    expect(migrations()).toHaveLength(2);
    expect(migrations().every((m) => m.spec?.targetHost === undefined)).toBe(true);

    // Still moving: no second migration.
    expect(pass(AFTER + 5000).moves).toEqual([]);
    expect(migrations()).toHaveLength(2);
  });

  it('a failed move is tried again after DRAIN_RETRY_MS; a moved instance is not', () => {
    degrade('DiskPressure');
    pass(AFTER);
    const [m1, m2] = migrations();
    const end = (m: ServiceMigration, phase: string, atMs: number) =>
      cluster.store.update(
        { ...m, status: { phase, completedAt: new Date(T0 + atMs).toISOString() } } as XObject,
        { subresource: 'status' },
      );
    end(m1, 'Failed', AFTER + 1000);
    end(m2, 'Succeeded', AFTER + 1000);
    const moved = cluster.store.get({
      kind: 'ServiceInstance',
      namespace: 'default',
      name: m2.spec!.instanceRef.name,
    })!;
    cluster.store.update({ ...moved, spec: { ...moved.spec, host: 'b' } } as XObject);
    expect(pass(AFTER + 2000).moves).toEqual([]);
    expect(pass(AFTER + 1000 + DRAIN_RETRY_MS).moves).toEqual([`default/${m1.spec!.instanceRef.name}`]);
    expect(migrations()).toHaveLength(3);
  });

  it('uncordoned by an operator: no second drain for the same degradation, one for a new one', () => {
    degrade('MemoryPressure');
    pass(AFTER);
    const h = host();
    cluster.store.update({ ...h, spec: { ...h.spec, drain: false, unschedulable: false } } as XObject);
    expect(pass(AFTER * 3)).toEqual({ drained: false, moves: [] });
    expect(host().spec?.drain).toBe(false);
    // It clears, then degrades again later: a new degradation.
    degrade('MemoryPressure', 'False', T0 + AFTER * 4);
    degrade('MemoryPressure', 'True', T0 + AFTER * 5);
    expect(pass(AFTER * 6 + 1).drained).toBe(true);
  });

  it('a host an operator drained by hand is left to xenosctl drain', () => {
    const h = host();
    cluster.store.update({ ...h, spec: { drain: true } } as XObject);
    degrade('HealthCheckFailing');
    expect(pass(AFTER * 2)).toEqual({ drained: false, moves: [] });
    expect(migrations()).toHaveLength(0);
  });
});
