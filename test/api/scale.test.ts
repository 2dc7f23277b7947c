// The scale subresource of a ServiceDeployment against a real xenosd: listed in discovery as an
// autoscaling/v1 Scale; GET reads the counts; PATCH (merge and JSON patch) and PUT change spec.replicas
// alone; a bad count is a located 422 that changes nothing; a stale resourceVersion is a 409; `xenosctl
// scale` sets it (and honours --current-replicas); a kind with no scale subresource has none.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { killAllCtl, xenosctl } from '../cli/run-xenosctl.ts';
import { removeDataDir, startXenosd, type XenosdProcess } from '../daemon/xenosd-process.ts';

const SD = '/apis/xenos.io/v1alpha1/namespaces/default/servicedeployments';
let xd: XenosdProcess;

beforeAll(async () => {
  xd = await startXenosd();
  const created = await xd.api(SD, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'ServiceDeployment',
      metadata: { name: 'web' },
      spec: { replicas: 2, template: { spec: { templateRef: { name: 'web' } } } },
    }),
  });
  expect(created.status).toBe(201);
}, 60_000);

afterAll(async () => {
  killAllCtl();
  await xd?.stop();
  if (xd) removeDataDir(xd.dataDir);
});

const json = async (r: Promise<Response>): Promise<any> => (await r).json();
const replicas = async () => (await json(xd.api(`${SD}/web`))).spec.replicas;
const patch = (body: unknown, type = 'application/merge-patch+json') =>
  xd.api(`${SD}/web/scale`, {
    method: 'PATCH',
    headers: { 'content-type': type },
    body: JSON.stringify(body),
  });

it('is listed in discovery and reads the counts as a Scale', async () => {
  const list = await json(xd.api('/apis/xenos.io/v1alpha1'));
  expect(list.resources).toContainEqual(
    expect.objectContaining({
      name: 'servicedeployments/scale',
      group: 'autoscaling',
      version: 'v1',
      kind: 'Scale',
    }),
  );
  expect(list.resources.find((r: any) => r.name === 'serviceinstances/scale')).toBeUndefined();
  const scale = await json(xd.api(`${SD}/web/scale`));
  expect(scale).toMatchObject({
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name: 'web', namespace: 'default' },
    spec: { replicas: 2 },
    // The deployment's own count of its replicas (this one-host cluster makes them).
    status: { replicas: expect.any(Number) },
  });
  expect((await xd.api('/apis/xenos.io/v1alpha1/namespaces/default/serviceinstances/x/scale')).status).toBe(
    404,
  );
});

it('changes spec.replicas by merge patch, JSON patch and PUT; refuses a bad count or a stale version', async () => {
  expect((await patch({ spec: { replicas: 5 } })).status).toBe(200);
  expect(await replicas()).toBe(5);
  expect(
    (await patch([{ op: 'replace', path: '/spec/replicas', value: 1 }], 'application/json-patch+json'))
      .status,
  ).toBe(200);
  expect(await replicas()).toBe(1);
  const scale = await json(xd.api(`${SD}/web/scale`));
  const put = await xd.api(`${SD}/web/scale`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...scale, spec: { replicas: 3 } }),
  });
  expect(put.status).toBe(200);
  expect(((await put.json()) as any).spec.replicas).toBe(3);
  const bad = await patch({ spec: { replicas: -1 } });
  expect(bad.status).toBe(422);
  expect(((await bad.json()) as any).details.causes).toContainEqual(
    expect.objectContaining({ field: 'spec.replicas' }),
  );
  const stale = await patch({
    metadata: { resourceVersion: scale.metadata.resourceVersion },
    spec: { replicas: 9 },
  });
  expect(stale.status).toBe(409);
  expect(await replicas()).toBe(3);
});

it('xenosctl scale sets it, and --current-replicas is a precondition', async () => {
  const env = { XENOS_SERVER: xd.url, XENOS_TOKEN: xd.token };
  const ok = await xenosctl(['scale', 'sd/web', '--replicas', '4'], { env });
  expect(ok.code, ok.stderr).toBe(0);
  expect(ok.stdout).toBe('servicedeployment.xenos.io/web scaled\n');
  expect(await replicas()).toBe(4);
  const refused = await xenosctl(
    ['scale', 'servicedeployment', 'web', '--replicas', '1', '--current-replicas', '2'],
    { env },
  );
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/has 4 replica\(s\), not 2: not scaled/);
  expect(await replicas()).toBe(4);
  const wrongKind = await xenosctl(['scale', 'si', 'web', '--replicas', '1'], { env });
  expect(wrongKind.code).toBe(1);
  expect(wrongKind.stderr).toMatch(/cannot be scaled/);
});
