// failOver (controllers/host/failover.ts) against a real store, liveness and placement: which instances of
// a NotReady host are re-bound (replicas of a deployment and instances with spec.failover, not pinned
// ones; not before hostDownSeconds; the same object with a raised epoch), where (within the deployment's
// spread, never on the dead host; the host keeping the copy of its disk layer first), and a singleton only
// by a side that sees a majority.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { failOver } from '../../../controllers/host/failover.ts';
import { failoverPlan } from '../../../src/cluster/failover.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import { FAILOVER_EPOCH_ANNOTATION, type ServiceInstance } from '../../../src/model/service-instance.ts';
import { type ClusterFixture, clusterFixture, obj, peerOf } from '../cluster-fixture.ts';

const SINCE = Date.parse('2026-12-05T12:00:00Z');
let cluster: ClusterFixture;

function instance(name: string, host: string, extra: Partial<ServiceInstance['spec']> = {}, owner?: string) {
  const o = obj('ServiceInstance', name, { templateRef: { name: 'web' }, host, ...extra }) as ServiceInstance;
  if (owner) {
    const d = cluster.store.get({ kind: 'ServiceDeployment', namespace: 'default', name: owner })!;
    o.metadata.ownerReferences = [
      {
        apiVersion: 'xenos.io/v1alpha1',
        kind: 'ServiceDeployment',
        name: owner,
        uid: d.metadata.uid!,
        controller: true,
      },
    ];
  }
  return cluster.store.create(o);
}

const pass = (atSeconds: number) =>
  failOver(
    {
      store: cluster.store,
      placement: cluster.placement,
      liveness: cluster.liveness,
      log: silentLogger.root,
      now: () => SINCE + atSeconds * 1000,
    },
    'b',
    SINCE,
  );
const get = (name: string) => cluster.store.get({ kind: 'ServiceInstance', namespace: 'default', name })!;

beforeEach(() => {
  cluster = clusterFixture('a');
  for (const h of ['a', 'b', 'c']) cluster.addHost(h);
  cluster.store.create(obj('ServiceTemplate', 'web', { image: { path: '/x' } }));
  cluster.store.create(
    obj('ServiceDeployment', 'web', {
      replicas: 3,
      template: { spec: { templateRef: { name: 'web' } } },
      spread: { maxPerHost: 2 },
      failover: { hostDownSeconds: 10 },
    }),
  );
  cluster.membership.set(peerOf('b'), 'dead');
});
afterEach(() => cluster.close());

describe('failOver', () => {
  it('re-binds replicas and instances with spec.failover after hostDownSeconds, leaves pinned ones', () => {
    const replica = instance('web-b', 'b', {}, 'web');
    instance('web-a', 'a', {}, 'web');
    instance('web-a2', 'a', {}, 'web');
    const solo = instance('solo', 'b', { failover: { hostDownSeconds: 20 } });
    instance('pinned', 'b');
    instance('off', 'b', { failover: { enabled: false } });

    expect(pass(9).moved).toEqual([]);
    expect(pass(9).nextInMs).toBe(1000);
    const first = pass(10);
    // a already runs two of web's replicas (maxPerHost 2): the replica goes to c.
    expect(first.moved).toEqual([{ instance: 'default/web-b', to: 'c' }]);
    expect(first.nextInMs).toBe(10_000);
    const moved = get('web-b');
    expect(moved.metadata.uid).toBe(replica.metadata.uid);
    expect(moved.metadata.annotations?.[FAILOVER_EPOCH_ANNOTATION]).toBe('1');
    expect(moved.metadata.annotations?.['xenos.io/failed-over-from']).toBe(
      `b ${new Date(SINCE + 10_000).toISOString()}`,
    );

    expect(pass(20).moved.map((m) => m.instance)).toEqual(['default/solo']);
    expect(get('solo').metadata.uid).toBe(solo.metadata.uid);
    expect(['a', 'c']).toContain(get('solo').spec?.host);
    for (const name of ['pinned', 'off']) expect(get(name).spec?.host).toBe('b');
    expect(pass(30)).toEqual({ moved: [] });
  });

  it('re-binds to the host keeping the copy of its disk layer when it fits, else where placement says', () => {
    const withCopyOn = (name: string, keeper: string) => {
      const i = instance(name, 'b', { failover: { hostDownSeconds: 5, copyEverySeconds: 2 } });
      const layerCopy = { host: keeper, takenAt: new Date(SINCE).toISOString(), bytes: 10 };
      cluster.store.update<ServiceInstance>({ ...i, status: { layerCopy } }, { subresource: 'status' });
    };
    // Whichever of a and c placement ranks first, each goes where its copy is.
    withCopyOn('kept-a', 'a');
    withCopyOn('kept-c', 'c');
    // A keeper that is dead (b itself here) cannot take it: placement's choice does.
    withCopyOn('kept-b', 'b');
    const moved = new Map(pass(5).moved.map((m) => [m.instance, m.to]));
    expect(moved.get('default/kept-a')).toBe('a');
    expect(moved.get('default/kept-c')).toBe('c');
    expect(['a', 'c']).toContain(moved.get('default/kept-b'));
  });

  it('plans where each instance of a host would go if it died, counting the ones planned before', () => {
    instance('web-a', 'a', {}, 'web');
    instance('web-c', 'c', {}, 'web');
    const b1 = instance('web-b1', 'b', {}, 'web');
    const b2 = instance('web-b2', 'b', {}, 'web');
    instance('pinned', 'b');
    // a and c have room for one more replica each (maxPerHost 2): one goes to each, never both to one.
    const plan = failoverPlan(cluster, 'b', [b1, b2, get('pinned')]);
    expect(plan.size).toBe(2);
    const hosts = [plan.get(b1.metadata.uid!), plan.get(b2.metadata.uid!)].map((c) =>
      c && 'host' in c ? c.host : undefined,
    );
    expect(hosts.sort()).toEqual(['a', 'c']);
  });

  it('says why when no host fits, and tries again', () => {
    cluster.membership.set(peerOf('c'), 'dead');
    instance('web-a', 'a', {}, 'web');
    instance('web-a2', 'a', {}, 'web');
    instance('web-b', 'b', {}, 'web');
    const p = pass(10);
    expect(p.moved).toEqual([]);
    expect(p.nextInMs).toBe(5000);
    expect(get('web-b').spec?.host).toBe('b');
  });

  it('re-binds a singleton only with a majority of the hosts live', () => {
    instance('one', 'b', { failover: { hostDownSeconds: 5, singleton: true } });
    cluster.addHost('d');
    cluster.membership.set(peerOf('d'), 'dead');
    // a and c of a, b, c, d: two of four is no majority.
    expect(pass(5).moved).toEqual([]);
    expect(get('one').spec?.host).toBe('b');
    cluster.store.delete({ kind: 'Host', namespace: '', name: 'd' });
    expect(pass(6).moved).toHaveLength(1);
  });
});
