// Failover end to end on three real xenosd processes. Host b runs a deployment's replica, a standalone
// instance with spec.failover and a pinned instance (no failover). kill -9 of b: once b has been NotReady
// for hostDownSeconds, the replica and the standalone instance are re-bound — the same objects, same uid —
// to a or c and run there (FailedOver says from where, and that they started fresh), the deployment stays
// within its spread, and the pinned one stays bound to b, Ready=Unknown. b restarted: its stale copies
// (still running, as a process domain outlives its killed coordinator) are stopped before b takes them
// as its own — the instances stay where they failed over to — and its pinned instance is adopted again.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import {
  answers,
  type ClusterHost,
  cleanUpAfterAll,
  ctl,
  endpointUrl,
  readyOf,
  SI,
  TestCluster,
  waitFor,
} from './harness.ts';
import { copyWebTemplate, webDeployment, webInstance } from './web-deployment.ts';

const SD = '/apis/xenos.io/v1alpha1/namespaces/default/servicedeployments';
const DOWN_S = 5;

const cluster = new TestCluster({ hostTimeout: '2s' });
const dir = mkdtempSync(join(tmpdir(), 'xenos-failover-'));
let a: ClusterHost;
let b: ClusterHost;

const instance = (name: string, failover: boolean) =>
  webInstance({ name, host: 'b', failover: failover ? { hostDownSeconds: DOWN_S } : undefined });

beforeAll(async () => {
  [a, b] = await cluster.startHosts(['a', 'b', 'c']);
  copyWebTemplate(dir);
  writeFileSync(join(dir, 'deployment.yaml'), webDeployment({ replicas: 3, hostDownSeconds: DOWN_S }));
  writeFileSync(join(dir, 'solo.yaml'), instance('solo', true));
  writeFileSync(join(dir, 'pinned.yaml'), instance('pinned', false));
}, 60_000);

cleanUpAfterAll(cluster, dir);

const get = (h: ClusterHost, name: string) => cluster.json(h, `${SI}/${name}`);

it('re-binds the instances that fail over off a dead host, and fences their copies when it returns', async () => {
  const applied = await ctl(a, ['apply', '-f', dir]);
  expect(applied.code, applied.stderr).toBe(0);
  await waitFor(
    async () => (await cluster.json(a, `${SD}/web`)).status?.readyReplicas === 3,
    'web: 3 replicas Ready',
    60_000,
  );
  const replicas = (await cluster.json(a, SI)).items.filter(
    (i: any) => i.metadata.labels?.['xenos.io/deployment'] === 'web',
  );
  // One per host: maxPerHost 2 over three hosts still spreads evenly.
  expect(replicas.map((i: any) => i.spec.host).sort()).toEqual(['a', 'b', 'c']);
  const onB = replicas.find((i: any) => i.spec.host === 'b');
  for (const name of ['solo', 'pinned']) {
    await waitFor(async () => readyOf(await get(a, name)) === 'True', `${name} Ready on b`, 60_000);
  }
  const before = { solo: await get(a, 'solo'), replica: await get(a, onB.metadata.name) };
  const staleUrls = [endpointUrl(before.solo), endpointUrl(before.replica)];
  for (const url of staleUrls) expect(await answers(url)).toBe(true);

  b.child.kill('SIGKILL');
  await b.exited;
  const verdict = await waitFor(async () => {
    const h = await cluster.json(a, '/apis/xenos.io/v1alpha1/hosts/b');
    return h.status?.conditions?.find((c: any) => c.type === 'Ready' && c.status === 'False');
  }, 'host b NotReady');

  // Re-bound (same object) and Ready elsewhere, saying so.
  const moved: Record<string, any> = {};
  for (const [what, was] of Object.entries(before)) {
    moved[what] = await waitFor(
      async () => {
        const i = await get(a, was.metadata.name);
        return i.spec.host !== 'b' && readyOf(i) === 'True' ? i : undefined;
      },
      `${was.metadata.name} Ready on another host`,
      DOWN_S * 1000 + 30_000,
    );
    const i = moved[what];
    expect(i.metadata.uid).toBe(was.metadata.uid);
    expect(['a', 'c']).toContain(i.spec.host);
    expect(i.status.host).toBe(i.spec.host);
    expect(i.metadata.annotations['xenos.io/failover-epoch']).toBe('1');
    const failedOver = i.status.conditions.find((c: any) => c.type === 'FailedOver');
    expect(failedOver).toMatchObject({ status: 'True', reason: 'StartedFresh' });
    expect(failedOver.message).toContain('from host b');
    // Not before its time: hostDownSeconds after the verdict.
    const at = Date.parse(i.metadata.annotations['xenos.io/failed-over-from'].split(' ')[1]);
    expect(at - Date.parse(verdict.lastTransitionTime)).toBeGreaterThanOrEqual(DOWN_S * 1000 - 1000);
    expect(await (await fetch(endpointUrl(i))).text()).toContain(
      what === 'solo' ? 'hello from solo' : 'hello from a replica',
    );
    console.log(
      `${i.metadata.name}: NotReady verdict → Ready on ${i.spec.host} in ${((Date.now() - Date.parse(verdict.lastTransitionTime)) / 1000).toFixed(1)} s (hostDownSeconds ${DOWN_S})`,
    );
  }
  // The deployment kept its replicas within its spread, and is whole again.
  const d = await waitFor(async () => {
    const got = await cluster.json(a, `${SD}/web`);
    return got.status?.readyReplicas === 3 ? got : undefined;
  }, 'web: 3 replicas Ready again');
  expect(d.status.replicas).toBe(3);
  // The pinned instance does not fail over: bound to b, and nobody can say how it is.
  const pinned = await get(a, 'pinned');
  expect(pinned.spec.host).toBe('b');
  expect(pinned.status.conditions.find((c: any) => c.type === 'Ready')).toMatchObject({
    status: 'Unknown',
    reason: 'HostNotReady',
  });

  // b comes back: its stale copies go, the instances stay where they failed over to.
  b = await cluster.startHost('b', { dataDir: b.dataDir, join: a.addrs });
  await waitFor(async () => (await cluster.hostReady(a, 'b')) === 'True', 'host b Ready again');
  for (const url of staleUrls)
    await waitFor(async () => !(await answers(url)), `stale copy at ${url} stopped`);
  // b held them until its store had caught up, and then stopped them as stale (older epoch).
  expect(b.stderr()).toMatch(/caught up with the cluster in \d+ ms/);
  expect(b.stderr()).toMatch(
    /ServiceInstance default\/solo .* failed over since it was started here \(its epoch 0, the instance's 1\): a stale copy/,
  );
  for (const i of Object.values(moved)) {
    const now = await get(b, i.metadata.name);
    expect(now.spec.host).toBe(i.spec.host);
    expect(now.status.host).toBe(i.spec.host);
    expect(readyOf(now)).toBe('True');
    expect(await answers(endpointUrl(now))).toBe(true);
  }
  await waitFor(async () => readyOf(await get(a, 'pinned')) === 'True', 'pinned adopted on b again');

  const deleted = await ctl(a, ['delete', '-f', dir]);
  expect(deleted.code, deleted.stderr).toBe(0);
  await waitFor(async () => (await cluster.json(b, SI)).items.length === 0, 'every instance gone', 30_000);
}, 150_000);
