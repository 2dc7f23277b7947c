// The Host controller against a real (in-memory SQLite) store and a scripted membership (which passes
// the real one's contract, test/cluster/membership-view.test.ts): its own Host is written when something
// changes and never again while nothing does (no heartbeat); the images it holds are listed when that
// set changes; a verdict about itself is answered with its own Ready=True; another host is marked
// NotReady only by the rendezvous owner, only once the membership holds it dead and the owner's own
// probe fails, and only after this host has warmed up; the instances bound to it then say Ready=Unknown.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostController, type HostFacts } from '../../../controllers/host/controller.ts';
import { HostLiveness } from '../../../src/cluster/liveness.ts';
import { Placement } from '../../../src/cluster/placement.ts';
import { ownerOf } from '../../../src/cluster/rendezvous.ts';
import type { Host } from '../../../src/model/host.ts';
import type { ServiceInstance } from '../../../src/model/service-instance.ts';
import { setCondition } from '../../../src/reconcile/conditions.ts';
import { objectKey } from '../../../src/reconcile/keys.ts';
import { updateStatus } from '../../../src/reconcile/status.ts';
import { openStore, type SqliteStore } from '../../../src/store/sqlite-store.ts';
import { ScriptedMembership } from '../../cluster/scripted-membership.ts';

const peerOf = (name: string) => `12D3KooWTestPeer${name.padEnd(36, 'x')}`;
const HOSTS = ['a', 'b', 'c', 'd'];

let store: SqliteStore;
let membership: ScriptedMembership;
let now: number;

beforeEach(() => {
  store = openStore({ path: ':memory:', namespaced: (k) => k !== 'Host', writer: 'test' });
  membership = new ScriptedMembership();
  now = 1_000_000;
});

afterEach(() => store.close());

function controllerFor(self: string, extra: () => Partial<HostFacts> = () => ({})) {
  const liveness = new HostLiveness(
    { store, now: () => now, membership: () => membership },
    { self, timeoutMs: 5000 },
  );
  const controller = new HostController(
    {
      store,
      liveness,
      facts: () => ({ peerId: peerOf(self), driver: 'process', drivers: ['process'], ...extra() }),
      allocations: new Placement({ store, liveness }),
    },
    { hostName: self },
  );
  liveness.start();
  return { liveness, controller };
}

const hostOf = (name: string) => store.get({ kind: 'Host', namespace: '', name }) as Host | undefined;
const ready = (name: string) => hostOf(name)?.status?.conditions?.find((c) => c.type === 'Ready');
const revision = () => Number(store.list('Host').resourceVersion);

/** Every host registered by its own controller, all alive in the membership. */
async function registerAll() {
  for (const h of HOSTS) {
    await controllerFor(h).controller.reconcile(h);
    membership.set(peerOf(h), 'alive');
  }
}

describe('the Host controller', () => {
  it('writes its own Host when something changes, and nothing while nothing does', async () => {
    const { controller } = controllerFor('a');
    await controller.reconcile('a');
    expect(ready('a')).toMatchObject({ status: 'True', reason: 'HostRunning' });
    expect(hostOf('a')?.status?.heartbeatTime).toBeUndefined();
    const rev = revision();
    now += 60_000;
    for (let i = 0; i < 5; i++) await controller.reconcile('a');
    expect(revision()).toBe(rev);
  });

  it('lists the images it holds, written when the set changes and only then', async () => {
    const img = (n: number) => ({
      digest: `sha256:${String(n).repeat(64)}`,
      manifest: `sha256:${'f'.repeat(64)}`,
      size: 4096 * n,
    });
    let images = [img(1)];
    const { controller } = controllerFor('a', () => ({ images }));
    await controller.reconcile('a');
    expect(hostOf('a')?.status?.images).toEqual([img(1)]);
    const rev = revision();
    await controller.reconcile('a');
    expect(revision()).toBe(rev);
    images = [img(1), img(2)];
    await controller.reconcile('a');
    expect(hostOf('a')?.status?.images).toEqual([img(1), img(2)]);
    expect(revision()).toBeGreaterThan(rev);
    images = [];
    await controller.reconcile('a');
    expect(hostOf('a')?.status?.images).toEqual([]);
  });

  it('answers a verdict about itself with its own Ready=True', async () => {
    const { controller } = controllerFor('a');
    await controller.reconcile('a');
    const h = hostOf('a')!;
    store.update(
      {
        ...h,
        status: {
          ...h.status,
          phase: 'NotReady',
          conditions: [
            {
              type: 'Ready',
              status: 'False',
              reason: 'HostUnreachable',
              message: 'marked by b',
              lastTransitionTime: new Date().toISOString(),
            },
          ],
        },
      },
      { subresource: 'status' },
    );
    await controller.reconcile('a');
    expect(ready('a')).toMatchObject({ status: 'True', reason: 'HostRunning' });
    expect(hostOf('a')?.status?.phase).toBe('Ready');
  });

  it('marks a dead host NotReady from its rendezvous owner alone, after the owner’s own probe fails', async () => {
    await registerAll();
    const dead = 'd';
    const owner = ownerOf(`host/${dead}`, ['a', 'b', 'c'])!;
    const views = Object.fromEntries(['a', 'b', 'c'].map((h) => [h, controllerFor(h).controller]));
    membership.set(peerOf(dead), 'dead', 'no refutation within 3 s of the suspicion by c');
    now += 5000; // warmed up
    for (const h of ['a', 'b', 'c'].filter((x) => x !== owner)) await views[h].reconcile(dead);
    expect(ready(dead)?.status).toBe('True'); // not theirs to write
    await views[owner].reconcile(dead);
    expect(ready(dead)).toMatchObject({ status: 'False', reason: 'HostUnreachable' });
    expect(ready(dead)?.message).toContain(
      'declared it dead (no refutation within 3 s of the suspicion by c)',
    );
    expect(ready(dead)?.message).toMatch(new RegExp(`own probe .* got no answer; marked by ${owner}$`));
    expect(hostOf(dead)?.status?.phase).toBe('NotReady');
  });

  it('does not mark a host that answers the owner’s own probe, nor while warming up', async () => {
    await registerAll();
    const owner = ownerOf('host/d', ['a', 'b', 'c'])!;
    const { controller, liveness } = controllerFor(owner);
    membership.set(peerOf('d'), 'dead');
    expect(await controller.reconcile('d')).toMatchObject({ requeueAfterMs: expect.any(Number) });
    expect(liveness.warmingUp).toBe(true);
    expect(ready('d')?.status).toBe('True');
    now += 5000;
    // The membership holds it dead, but it answers this host's own probe: not marked.
    membership.answer(peerOf('d'), true);
    await controller.reconcile('d');
    expect(ready('d')?.status).toBe('True');
    // Once the probe fails too, it is.
    membership.answer(peerOf('d'), false);
    await controller.reconcile('d');
    expect(ready('d')?.status).toBe('False');
  });

  it('marks the instances of a NotReady host Ready=Unknown, and one bound to it later too', async () => {
    await registerAll();
    const owner = ownerOf('host/d', ['a', 'b', 'c'])!;
    const { controller } = controllerFor(owner);
    const instance = async (name: string, host: string) => {
      store.create<ServiceInstance>({
        apiVersion: 'xenos.io/v1alpha1',
        kind: 'ServiceInstance',
        metadata: { name, namespace: 'default' },
        spec: { templateRef: { name: 'web' }, host },
      });
      await updateStatus(store, objectKey('ServiceInstance', `default/${name}`), (st, obj) => {
        st.phase = 'Running';
        setCondition(
          st,
          { type: 'Ready', status: 'True', reason: 'Healthy', message: '' },
          obj.metadata.generation,
        );
      });
    };
    const of = (name: string) =>
      store.get({ kind: 'ServiceInstance', namespace: 'default', name }) as ServiceInstance | undefined;
    await instance('on-d', 'd');
    await instance('on-a', 'a');
    membership.set(peerOf('d'), 'dead');
    now += 5000;
    await controller.reconcile('d');
    expect(of('on-d')?.status?.phase).toBe('Unknown');
    expect(of('on-d')?.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'Unknown',
      reason: 'HostNotReady',
      message: expect.stringContaining('its host d is NotReady'),
    });
    expect(of('on-a')?.status?.phase).toBe('Running');
    // Bound to it after the verdict: marked on the next pass; marked ones are not written again.
    await instance('late', 'd');
    await controller.reconcile('d');
    expect(of('late')?.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('Unknown');
    const after = revision();
    await controller.reconcile('d');
    expect(revision()).toBe(after);
  });
});
