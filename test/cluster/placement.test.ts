// Placement, rendezvous ranking and liveness against a real (in-memory SQLite) store: which hosts fit an
// instance and why not, that every host ranks alike and only the top one binds, that losing a host moves
// only its own keys, and that liveness follows the membership (alive and suspect are live, dead is not, a
// host never met is live only while this host warms up).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostLiveness } from '../../src/cluster/liveness.ts';
import { Placement } from '../../src/cluster/placement.ts';
import { ownerOf, rankHosts } from '../../src/cluster/rendezvous.ts';
import { Scheduler } from '../../src/cluster/scheduler.ts';
import type { XObject } from '../../src/model/object.ts';
import { openStore, type SqliteStore } from '../../src/store/sqlite-store.ts';
import { ScriptedMembership } from './scripted-membership.ts';

function host(
  name: string,
  opts: {
    labels?: Record<string, string>;
    unschedulable?: boolean;
    ready?: boolean;
    instances?: number;
    memory?: string;
  } = {},
): XObject {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'Host',
    metadata: { name, labels: { zone: name, ...opts.labels } },
    spec: { unschedulable: opts.unschedulable ?? false },
  };
}

function hostStatus(name: string, opts: { ready?: boolean; instances?: number; memory?: string } = {}) {
  return {
    peerId: peerOf(name),
    allocatable: { cpu: '2', memory: opts.memory ?? '4Gi', instances: opts.instances ?? 10 },
    drivers: ['process'],
    conditions: [
      {
        type: 'Ready',
        status: opts.ready === false ? 'False' : 'True',
        reason: 'Test',
        message: name,
        lastTransitionTime: new Date().toISOString(),
      },
    ],
  };
}

function peerOf(name: string): string {
  return `12D3KooWTestPeer${name.padEnd(36, 'x')}`;
}

function instance(name: string, spec: Record<string, unknown> = {}): XObject {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name, namespace: 'default' },
    spec: { templateRef: { name: 'web' }, ...spec },
  };
}

describe('rendezvous ranking', () => {
  it('is the same whatever order the hosts come in', () => {
    for (let k = 0; k < 50; k++) {
      expect(rankHosts(`key-${k}`, ['a', 'b', 'c', 'd'])).toEqual(
        rankHosts(`key-${k}`, ['d', 'c', 'b', 'a']),
      );
    }
  });

  it('spreads keys over hosts, and losing a host moves only its keys', () => {
    const hosts = ['a', 'b', 'c'];
    const owners = new Map<string, string>();
    const count: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let k = 0; k < 3000; k++) {
      const o = ownerOf(`instance/${k}`, hosts)!;
      owners.set(`instance/${k}`, o);
      count[o]++;
    }
    for (const h of hosts) expect(count[h]).toBeGreaterThan(800);
    for (const [key, o] of owners) {
      const after = ownerOf(key, ['a', 'c'])!;
      if (o !== 'b') expect(after).toBe(o);
    }
  });
});

describe('placement and liveness', () => {
  let store: SqliteStore;
  let now: number;
  let liveness: HostLiveness;
  let membership: ScriptedMembership;

  beforeEach(() => {
    store = openStore({ path: ':memory:', namespaced: (k) => k !== 'Host', writer: 'a' });
    now = 1_000_000;
    membership = new ScriptedMembership();
    liveness = new HostLiveness(
      { store, now: () => now, membership: () => membership },
      { self: 'a', timeoutMs: 5000 },
    );
  });

  afterEach(() => {
    liveness.stop();
    store.close();
  });

  /** A host with its status, held alive by the membership unless `member` says otherwise. */
  function addHost(
    name: string,
    opts: Parameters<typeof host>[1] &
      Parameters<typeof hostStatus>[1] & { member?: 'suspect' | 'dead' | 'unknown' } = {},
  ) {
    const created = store.create(host(name, opts));
    store.update({ ...created, status: hostStatus(name, opts) } as XObject, { subresource: 'status' });
    if (opts.member !== 'unknown') membership.set(peerOf(name), opts.member ?? 'alive');
  }

  it('a host is live while the membership holds it alive or suspect, and not once it is dead', () => {
    addHost('a');
    addHost('b');
    liveness.start();
    const changed: string[] = [];
    liveness.onChange((h) => changed.push(h));
    now += 60_000; // long past warming up: only the membership decides
    expect(liveness.isLive('b')).toBe(true);
    membership.set(peerOf('b'), 'suspect');
    expect(liveness.isLive('b')).toBe(true);
    membership.set(peerOf('b'), 'dead', 'no refutation');
    expect(liveness.isLive('b')).toBe(false);
    expect(liveness.deathOf('b')).toMatchObject({ detail: 'no refutation' });
    expect(liveness.liveHosts()).toEqual(['a']);
    expect(liveness.isLive('a')).toBe(true); // itself, always
    membership.set(peerOf('b'), 'alive');
    expect(liveness.isLive('b')).toBe(true);
    expect(liveness.deathOf('b')).toBeUndefined();
    expect(changed).toEqual(['b', 'b', 'b']);
  });

  it('a host the membership never met is live only while this host warms up', () => {
    addHost('a');
    addHost('old', { member: 'unknown' });
    liveness.start();
    expect(liveness.isLive('old')).toBe(true);
    now += 5000;
    expect(liveness.warmingUp).toBe(false);
    expect(liveness.isLive('old')).toBe(false);
  });

  it('without a membership (a cluster of one) other hosts are live only while warming up', async () => {
    const alone = new HostLiveness({ store, now: () => now }, { self: 'a', timeoutMs: 5000 });
    addHost('a');
    addHost('b');
    alone.start();
    expect(alone.isLive('b')).toBe(true);
    now += 5000;
    expect(alone.isLive('b')).toBe(false);
    expect(await alone.answers('b')).toBe(false);
    alone.stop();
  });

  it('places on the one live, ready, schedulable host that matches, with room; says why not otherwise', () => {
    addHost('a', { labels: { disk: 'ssd' } });
    addHost('b', { labels: { disk: 'ssd' }, unschedulable: true });
    addHost('c', { labels: { disk: 'ssd' }, ready: false });
    addHost('d', { labels: { disk: 'hdd' } });
    addHost('e', { labels: { disk: 'ssd' }, instances: 1 });
    addHost('f', { labels: { disk: 'ssd' }, memory: '64Mi' });
    liveness.start();
    store.create(instance('busy', { host: 'e' }));
    const placement = new Placement({ store, liveness });
    const i = store.create(instance('x', { hostSelector: { disk: 'ssd' }, resources: { memory: '128Mi' } }));
    expect(placement.decide(i as never)).toMatchObject({ host: 'a', ranked: ['a'] });

    store.update({
      ...store.get({ kind: 'Host', namespace: '', name: 'a' })!,
      spec: { unschedulable: true },
    });
    const none = placement.decide(i as never);
    expect(none.host).toBeUndefined();
    const message = (none as { message: string }).message;
    expect(message).toContain('a is cordoned');
    expect(message).toContain('c is not Ready');
    expect(message).toContain('d has no label disk=ssd');
    expect(message).toContain('e is full');
    expect(message).toContain('f lacks memory');
  });

  it('only the top-ranked host binds; the others leave the instance alone', async () => {
    for (const n of ['a', 'b', 'c']) addHost(n);
    liveness.start();
    const i = store.create(instance('web-1'));
    const placement = new Placement({ store, liveness });
    const decision = placement.decide(i as never);
    expect(decision.host).toBeDefined();
    // Each host's scheduler over the same store, the chosen one last: the others write nothing.
    const order = ['a', 'b', 'c'].filter((h) => h !== decision.host).concat(decision.host!);
    for (const self of order) {
      const view = new HostLiveness(
        { store, now: () => now, membership: () => membership },
        { self, timeoutMs: 5000 },
      );
      view.start();
      const scheduler = new Scheduler(
        { store, placement: new Placement({ store, liveness: view }), liveness: view },
        { hostName: self },
      );
      await scheduler.reconcile('default/web-1');
      view.stop();
      const bound = (
        store.get({ kind: 'ServiceInstance', namespace: 'default', name: 'web-1' })!.spec as { host?: string }
      ).host;
      expect(bound).toBe(self === decision.host ? self : undefined);
    }
    const final = store.get({ kind: 'ServiceInstance', namespace: 'default', name: 'web-1' })!;
    expect((final.spec as { host?: string }).host).toBe(decision.host);
  });

  it('prefers hosts that already hold the image when all else is equal, never one that does not fit', () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    for (const n of ['a', 'b', 'c', 'd']) addHost(n);
    liveness.start();
    store.create({
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'ServiceTemplate',
      metadata: { name: 'web', namespace: 'default' },
      spec: { image: { digest } },
    });
    const placement = new Placement({ store, liveness });
    const instances = Array.from({ length: 24 }, (_, k) => store.create(instance(`w-${k}`)) as never);
    // Nobody holds it: the rendezvous ranking alone, which spreads instances over the hosts.
    const spread = new Set(instances.map((i) => placement.decide(i).host));
    expect(spread.size).toBeGreaterThan(2);
    const loser = instances.find((i) => placement.decide(i).host !== 'c')!;
    const before = (placement.decide(loser) as { ranked: string[] }).ranked;

    const holds = (name: string, images: unknown[]) => {
      const h = store.get({ kind: 'Host', namespace: '', name })!;
      store.update({ ...h, status: { ...(h.status as object), images } } as XObject, {
        subresource: 'status',
      });
    };
    holds('c', [{ digest, manifest: `sha256:${'cd'.repeat(32)}`, size: 1 }]);
    holds('d', [{ digest: `sha256:${'ef'.repeat(32)}`, manifest: `sha256:${'01'.repeat(32)}`, size: 1 }]);
    for (const i of instances) expect(placement.decide(i).host).toBe('c');
    // The rest keep their rendezvous order behind the holder.
    const after = (placement.decide(loser) as { ranked: string[] }).ranked;
    expect(after).toEqual(['c', ...before.filter((h) => h !== 'c')]);

    // A holder that does not fit is not preferred: cordoned, the ranking is as before without it.
    const c = store.get({ kind: 'Host', namespace: '', name: 'c' })!;
    store.update({ ...c, spec: { unschedulable: true } });
    expect((placement.decide(loser) as { ranked: string[] }).ranked).toEqual(before.filter((h) => h !== 'c'));
  });
});
