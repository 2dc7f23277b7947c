// A ServiceDeployment end to end on three real xenosd processes: applied through host a, its replicas are
// made by the host that works on it, spread at most two per host, run and become Ready where they are
// bound; a changed template replaces them all; `xenosctl scale` scales it down; deleting it deletes its
// replicas.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { type ClusterHost, cleanUpAfterAll, ctl, SI, TestCluster, waitFor } from './harness.ts';
import { copyWebTemplate, webDeployment } from './web-deployment.ts';

const SD = '/apis/xenos.io/v1alpha1/namespaces/default/servicedeployments';

const cluster = new TestCluster({ hostTimeout: '2s' });
const dir = mkdtempSync(join(tmpdir(), 'xenos-deploy-'));
let a: ClusterHost;
let c: ClusterHost;

beforeAll(async () => {
  [a, , c] = await cluster.startHosts(['a', 'b', 'c']);
  copyWebTemplate(dir);
}, 60_000);

cleanUpAfterAll(cluster, dir);

const replicas = async (h: ClusterHost) =>
  (await cluster.json(h, SI)).items.filter(
    (i: any) => i.metadata.labels?.['xenos.io/deployment'] === 'web' && !i.metadata.deletionTimestamp,
  );

it('makes, spreads, runs, replaces, scales down and deletes its replicas', async () => {
  writeFileSync(join(dir, 'deployment.yaml'), webDeployment({ replicas: 4 }));
  const applied = await ctl(a, ['apply', '-f', dir]);
  expect(applied.code, applied.stderr).toBe(0);
  const d = await waitFor(
    async () => {
      const got = await cluster.json(c, `${SD}/web`);
      return got.status?.readyReplicas === 4 ? got : undefined;
    },
    'web: 4 replicas Ready, as host c sees it',
    60_000,
  );
  expect(d.status.replicas).toBe(4);
  const running = await replicas(c);
  expect(running).toHaveLength(4);
  const perHost: Record<string, number> = {};
  for (const i of running) perHost[i.spec.host] = (perHost[i.spec.host] ?? 0) + 1;
  expect(Math.max(...Object.values(perHost))).toBeLessThanOrEqual(2);
  expect(Object.keys(perHost).sort()).toEqual(['a', 'b', 'c']);
  // Each answers where it runs.
  for (const i of running) {
    const url =
      i.status.endpoints[0].url ?? `http://${i.status.endpoints[0].address}:${i.status.endpoints[0].port}`;
    expect(await (await fetch(url)).text()).toContain('hello from a replica');
  }

  // A new greeting: every replica is replaced, one more at a time, and then answers with it.
  writeFileSync(
    join(dir, 'deployment.yaml'),
    webDeployment({ replicas: 4, greeting: 'hello from version 2' }),
  );
  expect((await ctl(a, ['apply', '-f', dir])).code).toBe(0);
  const ready = (i: any) => i.status?.conditions?.some((x: any) => x.type === 'Ready' && x.status === 'True');
  await waitFor(
    async () => {
      const all = await replicas(c);
      return (
        all.length === 4 &&
        all.every((i: any) => i.spec.parameters?.greeting === 'hello from version 2' && ready(i))
      );
    },
    'web: 4 replicas of the new template Ready',
    90_000,
  );
  await waitFor(
    async () => (await cluster.json(c, `${SD}/web`)).status?.updatedReplicas === 4,
    'web status: 4 updated replicas',
  );
  for (const i of await replicas(c)) {
    const e = i.status.endpoints[0];
    expect(await (await fetch(e.url ?? `http://${e.address}:${e.port}`)).text()).toContain(
      'hello from version 2',
    );
  }

  const scaled = await ctl(a, ['scale', 'sd/web', '--replicas', '1']);
  expect(scaled.code, scaled.stderr).toBe(0);
  await waitFor(async () => (await replicas(a)).length === 1, 'web scaled down to 1 replica');
  await waitFor(
    async () => (await cluster.json(a, `${SD}/web`)).status?.replicas === 1,
    'web status: 1 replica',
  );

  const deleted = await ctl(a, ['delete', 'servicedeployment', 'web', '--wait', '--timeout', '60s']);
  expect(deleted.code, deleted.stderr).toBe(0);
  await waitFor(
    async () => (await cluster.json(c, SI)).items.length === 0,
    'every replica gone, as c sees it',
  );
}, 240_000);
