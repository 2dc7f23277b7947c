// A watch that resumes across a xenosd restart: a client that held resourceVersion R before the restart
// watches from R afterwards and gets what changed since — from the store's table up to the restart, then
// live — instead of 410 Gone and a full relist. The real daemon, stopped and started on its data dir.

import { afterAll, describe, expect, it } from 'vitest';
import { removeDataDir, startXenosd, type XenosdProcess } from './xenosd-process.ts';

const SI = '/apis/xenos.io/v1alpha1/namespaces/default/serviceinstances';

function parked(name: string) {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name, labels: { app: 'resume' } },
    spec: { templateRef: { name: 'none' }, runStrategy: 'Halted', hostSelector: { zone: 'nowhere' } },
  };
}

/** The watch's events (type and name) until the server ends it. */
async function events(xd: XenosdProcess, rv: string): Promise<{ status: number; seen: string[] }> {
  const res = await xd.api(
    `${SI}?watch=true&labelSelector=app%3Dresume&resourceVersion=${rv}&timeoutSeconds=2`,
  );
  const text = await res.text();
  const seen = text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; object: { metadata: { name: string } } })
    .map((ev) => `${ev.type} ${ev.object.metadata.name}`);
  return { status: res.status, seen };
}

describe('a watch resumed across a restart', () => {
  let xd: XenosdProcess | undefined;
  afterAll(async () => {
    await xd?.stop();
    if (xd) removeDataDir(xd.dataDir);
  });

  it('gets what changed since its revision, not 410', async () => {
    xd = await startXenosd();
    const post = (name: string) =>
      xd!.api(SI, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(parked(name)),
      });
    expect((await post('before')).status).toBe(201);
    const list = (await (await xd.api(`${SI}?labelSelector=app%3Dresume`)).json()) as {
      metadata: { resourceVersion: string };
    };
    const rv = list.metadata.resourceVersion;
    expect((await post('meanwhile')).status).toBe(201);
    expect((await post('gone')).status).toBe(201);
    expect((await xd.api(`${SI}/gone`, { method: 'DELETE' })).status).toBe(200);
    const dataDir = xd.dataDir;
    await xd.stop();
    xd = await startXenosd({ dataDir });
    expect((await post('after')).status).toBe(201);

    const { status, seen } = await events(xd, rv);
    expect(status).toBe(200);
    // Each object changed since rv, in its latest state, then what happened since the restart; never
    // `before`, which the client already had, and no ERROR (410) event.
    expect(seen).toContain('DELETED gone');
    expect(seen).toContain('ADDED after');
    expect(seen.some((e) => e.endsWith(' meanwhile'))).toBe(true);
    expect(seen.filter((e) => e.endsWith(' before')).every((e) => e.startsWith('MODIFIED'))).toBe(true);
    expect(seen.some((e) => e.startsWith('ERROR'))).toBe(false);
  }, 60_000);
});
