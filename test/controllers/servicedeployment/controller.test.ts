// The ServiceDeployment controller over a real store, liveness and placement (test/controllers/
// cluster-fixture.ts): it makes spec.replicas instances, each bound to a host, at most spread.maxPerHost
// per host and evenly spread; says which replicas have no host and why; scales down Ready replicas last;
// only the live host that ranks first for the deployment works on it, and another takes over when it
// dies; deleting the deployment deletes its replicas before the deployment goes; a changed template
// replaces the replicas within maxSurge and maxUnavailable.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DEPLOYMENT_LABEL,
  ServiceDeploymentController,
  TEMPLATE_HASH_LABEL,
  templateHash,
} from '../../../controllers/servicedeployment/controller.ts';
import { ownerOf } from '../../../src/cluster/rendezvous.ts';
import type { ServiceDeployment } from '../../../src/model/service-deployment.ts';
import type { ServiceInstance } from '../../../src/model/service-instance.ts';
import type { ServiceTemplate } from '../../../src/model/service-template.ts';
import { setCondition } from '../../../src/reconcile/conditions.ts';
import { objectKey } from '../../../src/reconcile/keys.ts';
import { updateStatus } from '../../../src/reconcile/status.ts';
import { type ClusterFixture, clusterFixture, obj, peerOf } from '../cluster-fixture.ts';

const HOSTS = ['a', 'b', 'c', 'd'];
let cluster: ClusterFixture;

beforeEach(() => {
  // Seen from a host outside HOSTS: a host's own view always holds itself live, so a test that lets the
  // deployment's worker die needs every worker candidate to be another host.
  cluster = clusterFixture('observer');
  for (const h of HOSTS) cluster.addHost(h);
  cluster.store.create(obj('ServiceTemplate', 'web', { image: { path: '/images/v1' } }));
});
afterEach(() => cluster.close());

function controllerOf(self: string) {
  return new ServiceDeploymentController(
    { store: cluster.store, placement: cluster.placement, liveness: cluster.liveness },
    { hostName: self },
  );
}

function deploy(replicas: number, spread?: object, strategy?: object): ServiceDeployment {
  return cluster.store.create(
    obj('ServiceDeployment', 'web', {
      replicas,
      template: { metadata: { labels: { app: 'web' } }, spec: { templateRef: { name: 'web' } } },
      ...(spread ? { spread } : {}),
      ...(strategy ? { strategy } : {}),
    }),
  ) as ServiceDeployment;
}

/** The host that works on `d` (the first live one by rendezvous on its uid) and its controller. */
function worker(d: ServiceDeployment, live = HOSTS) {
  const name = ownerOf(`deployment/${d.metadata.uid}`, live)!;
  return { name, controller: controllerOf(name) };
}

const pass = (c: ServiceDeploymentController) =>
  c.reconcile('default/web', { signal: new AbortController().signal });
const deployment = () =>
  cluster.store.get({ kind: 'ServiceDeployment', namespace: 'default', name: 'web' }) as
    | ServiceDeployment
    | undefined;
const replicas = () =>
  (cluster.store.list('ServiceInstance', { namespace: 'default' }).items as ServiceInstance[]).filter(
    (i) => i.metadata.labels?.[DEPLOYMENT_LABEL] === 'web' && !i.metadata.deletionTimestamp,
  );
function perHost(): Record<string, number> {
  const n: Record<string, number> = {};
  for (const i of replicas()) n[i.spec!.host!] = (n[i.spec!.host!] ?? 0) + 1;
  return n;
}
const template_ = () =>
  cluster.store.get({ kind: 'ServiceTemplate', namespace: 'default', name: 'web' }) as ServiceTemplate;
const condition = (type: string) => deployment()?.status?.conditions?.find((c) => c.type === type);

async function markReady(i: ServiceInstance) {
  await updateStatus(cluster.store, objectKey('ServiceInstance', `default/${i.metadata.name}`), (s, o) => {
    s.phase = 'Running';
    setCondition(s, { type: 'Ready', status: 'True', reason: 'Healthy', message: '' }, o.metadata.generation);
  });
}

describe('the ServiceDeployment controller', () => {
  it('makes its replicas, each bound to a host, evenly spread and at most maxPerHost on one', async () => {
    const d = deploy(6, { maxPerHost: 2 });
    await pass(worker(d).controller);
    const made = replicas();
    expect(made).toHaveLength(6);
    for (const i of made) {
      expect(i.metadata.name).toMatch(/^web-[a-z0-9]{5}$/);
      expect(i.metadata.labels).toMatchObject({ app: 'web', [DEPLOYMENT_LABEL]: 'web' });
      expect(i.metadata.ownerReferences).toEqual([
        expect.objectContaining({
          kind: 'ServiceDeployment',
          name: 'web',
          uid: d.metadata.uid,
          controller: true,
        }),
      ]);
      expect(i.spec?.templateRef).toEqual({ name: 'web' });
    }
    const counts = Object.values(perHost());
    expect(Math.max(...counts)).toBeLessThanOrEqual(2);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    expect(Object.keys(perHost())).toHaveLength(4);
    expect(deployment()?.status).toMatchObject({ replicas: 6, readyReplicas: 0 });
    expect(condition('ReplicasPlaced')?.status).toBe('True');
    expect(condition('Ready')?.status).toBe('True');
    expect(condition('Available')).toMatchObject({
      status: 'False',
      reason: 'MinimumReplicasUnavailable',
      message: '0 of 6 replica(s) Ready (at least 6 wanted)',
    });
    expect(condition('Progressing')).toMatchObject({ status: 'True', reason: 'ReplicasUpdating' });
    // A second pass changes nothing.
    await pass(worker(d).controller);
    expect(replicas()).toHaveLength(6);
  });

  it('says how many replicas have no host and why, and places them once a host has room', async () => {
    const d = deploy(9, { maxPerHost: 2 });
    const { controller } = worker(d);
    expect(await pass(controller)).toMatchObject({ requeueAfterMs: expect.any(Number) });
    expect(replicas()).toHaveLength(8);
    expect(condition('ReplicasPlaced')).toMatchObject({ status: 'False', reason: 'Unschedulable' });
    expect(condition('ReplicasPlaced')?.message).toMatch(
      /1 of 9 replica\(s\) have no host: .*spread\.maxPerHost 2/,
    );
    expect(condition('Ready')?.status).toBe('False');
    cluster.addHost('e');
    // (A new live host may rank first for the deployment now: whichever does works on it.)
    await pass(worker(d, [...HOSTS, 'e']).controller);
    expect(replicas()).toHaveLength(9);
    expect(perHost().e).toBe(1);
    expect(condition('ReplicasPlaced')?.status).toBe('True');
  });

  it('scales down the replicas that are not Ready first', async () => {
    const d = deploy(4);
    const { controller } = worker(d);
    await pass(controller);
    const ready = replicas().slice(0, 2);
    for (const i of ready) await markReady(i);
    cluster.store.update({ ...deployment()!, spec: { ...deployment()!.spec!, replicas: 2 } });
    await pass(controller);
    expect(
      replicas()
        .map((i) => i.metadata.name)
        .sort(),
    ).toEqual(ready.map((i) => i.metadata.name).sort());
    expect(deployment()?.status).toMatchObject({ replicas: 2, readyReplicas: 2 });
  });

  it('is worked on by its rendezvous host alone, and by the next one when that host dies', async () => {
    const d = deploy(2);
    const first = worker(d);
    for (const h of HOSTS.filter((x) => x !== first.name)) await pass(controllerOf(h));
    expect(replicas()).toHaveLength(0);
    cluster.membership.set(peerOf(first.name), 'dead');
    const next = worker(
      d,
      HOSTS.filter((x) => x !== first.name),
    );
    await pass(next.controller);
    expect(replicas()).toHaveLength(2);
    // The dead host gets none of them.
    expect(perHost()[first.name]).toBeUndefined();
  });

  it('deletes its replicas when it is deleted, and goes once they are gone', async () => {
    const d = deploy(3);
    const { controller } = worker(d);
    await pass(controller);
    expect(replicas()).toHaveLength(3);
    cluster.store.delete({ kind: 'ServiceDeployment', namespace: 'default', name: 'web' });
    expect(deployment()?.metadata.deletionTimestamp).toBeDefined(); // held by its finalizer
    await pass(controller);
    await pass(controller);
    expect(replicas()).toHaveLength(0);
    expect(deployment()).toBeUndefined();
  });

  /** Changes the template's parameters, then passes until no replica of the old template is left,
   *  every new replica turning Ready between passes; returns the counts seen after each pass. */
  async function rollOut(controller: ServiceDeploymentController, afterPass: () => void = () => {}) {
    const d = deployment()!;
    const template = { ...d.spec!.template, spec: { ...d.spec!.template.spec, parameters: { v: '2' } } };
    cluster.store.update({ ...d, spec: { ...d.spec!, template } });
    const hash = templateHash(deployment()!, template_());
    const seen: { total: number; ready: number; updated: number }[] = [];
    for (let pass_ = 0; pass_ < 20; pass_++) {
      await pass(controller);
      afterPass();
      const now = replicas();
      seen.push({
        total: now.length,
        ready: now.filter((i) => i.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
          .length,
        updated: now.filter((i) => i.metadata.labels?.[TEMPLATE_HASH_LABEL] === hash).length,
      });
      if (now.every((i) => i.metadata.labels?.[TEMPLATE_HASH_LABEL] === hash) && now.length === 3) break;
      for (const i of now) await markReady(i);
    }
    return { seen, hash };
  }

  it('replaces its replicas when the template changes: one more at a time, never fewer Ready', async () => {
    const d = deploy(3);
    const { controller } = worker(d);
    await pass(controller);
    for (const i of replicas()) await markReady(i);
    const { seen, hash } = await rollOut(controller);
    // The first pass only adds one (maxSurge 1); no pass leaves more than 4 or fewer than 3 Ready.
    expect(seen[0]).toEqual({ total: 4, ready: 3, updated: 1 });
    for (const s of seen) expect(s.total).toBeLessThanOrEqual(4);
    for (const s of seen.slice(0, -1)) expect(s.ready).toBeGreaterThanOrEqual(3);
    const last = replicas();
    expect(last).toHaveLength(3);
    expect(
      last.every((i) => i.metadata.labels?.[TEMPLATE_HASH_LABEL] === hash && i.spec?.parameters?.v === '2'),
    ).toBe(true);
    // Mid-rollout the pair says so; at the end, complete.
    expect(seen.length).toBeGreaterThan(1);
    for (const i of replicas()) await markReady(i);
    await pass(controller);
    expect(deployment()?.status).toMatchObject({ replicas: 3, updatedReplicas: 3, readyReplicas: 3 });
    expect(condition('Available')).toMatchObject({ status: 'True', reason: 'MinimumReplicasAvailable' });
    expect(condition('Progressing')).toMatchObject({ status: 'True', reason: 'NewReplicasAvailable' });
  });

  it('with maxSurge 0 replaces in place (never more than replicas), one unavailable at a time', async () => {
    const d = deploy(3, undefined, { maxSurge: 0, maxUnavailable: 1 });
    const { controller } = worker(d);
    await pass(controller);
    for (const i of replicas()) await markReady(i);
    const { seen } = await rollOut(controller, () => {
      // While one replica is replaced, 2 of 3 Ready still meet replicas - maxUnavailable.
      if (condition('Progressing')?.reason === 'ReplicasUpdating')
        expect(condition('Available')?.status).toBe('True');
    });
    expect(seen[0]).toEqual({ total: 3, ready: 2, updated: 1 });
    for (const s of seen) expect(s.total).toBeLessThanOrEqual(3);
    for (const s of seen.slice(0, -1)) expect(s.ready).toBeGreaterThanOrEqual(2);
  });

  it('replaces its replicas when the ServiceTemplate they run changes its spec, not its status', async () => {
    const t = cluster.store.get({ kind: 'ServiceTemplate', namespace: 'default', name: 'web' });
    const d = deploy(2);
    const { controller } = worker(d);
    await pass(controller);
    for (const i of replicas()) await markReady(i);
    const before = new Set(replicas().map((i) => i.metadata.name));
    // Each host writes the template's status as it imports: no replacement.
    await updateStatus(cluster.store, objectKey('ServiceTemplate', 'default/web'), (st) => {
      st.phase = 'Ready';
    });
    await pass(controller);
    expect(new Set(replicas().map((i) => i.metadata.name))).toEqual(before);
    // A new image: replaced, one more at a time.
    const now = cluster.store.get({ kind: 'ServiceTemplate', namespace: 'default', name: 'web' })!;
    const v2 = cluster.store.update({ ...now, spec: { image: { path: '/images/v2' } } }) as ServiceTemplate;
    const hash = templateHash(deployment()!, v2);
    expect(hash).not.toBe(templateHash(deployment()!, t as ServiceTemplate));
    for (
      let n = 0;
      n < 10 && !replicas().every((i) => i.metadata.labels?.[TEMPLATE_HASH_LABEL] === hash);
      n++
    ) {
      await pass(controller);
      expect(replicas().length).toBeLessThanOrEqual(3);
      for (const i of replicas()) await markReady(i);
    }
    expect(replicas()).toHaveLength(2);
    expect(
      replicas().every(
        (i) => i.metadata.labels?.[TEMPLATE_HASH_LABEL] === hash && !before.has(i.metadata.name),
      ),
    ).toBe(true);
  });

  it('makes no replica until its ServiceTemplate exists', async () => {
    cluster.store.delete({ kind: 'ServiceTemplate', namespace: 'default', name: 'web' });
    const d = deploy(2);
    const { controller } = worker(d);
    await pass(controller);
    expect(replicas()).toHaveLength(0);
    expect(condition('ReplicasPlaced')).toMatchObject({ status: 'False', reason: 'TemplateNotFound' });
    cluster.store.create(obj('ServiceTemplate', 'web', { image: { path: '/images/v1' } }));
    await pass(controller);
    expect(replicas()).toHaveLength(2);
  });

  it('refuses a strategy that could never replace anything', async () => {
    const d = deploy(2, undefined, { maxSurge: 0, maxUnavailable: 0 });
    await pass(worker(d).controller);
    expect(replicas()).toHaveLength(0);
    expect(condition('Stalled')).toMatchObject({ status: 'True', reason: 'InvalidStrategy' });
    expect(condition('Stalled')?.message).toMatch(
      /spec\.strategy: maxSurge and maxUnavailable cannot both be 0/,
    );
  });
});
