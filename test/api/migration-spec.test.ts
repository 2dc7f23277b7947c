// A ServiceMigration through the real API: spec.targetHost may be left out (the source host picks one),
// and its spec cannot change once created — a PUT or a patch of it is refused with 422 naming the field
// and what to do, and nothing is written; its status and metadata still change.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcessApi, startInProcessApi } from './in-process-api.ts';

const SMIG = '/apis/xenos.io/v1alpha1/namespaces/default/servicemigrations';
const MERGE = 'application/merge-patch+json';

describe('ServiceMigration spec', () => {
  let api: InProcessApi;
  const call = (method: string, path: string, body?: unknown, type?: string) =>
    api.call(api.admin, method, path, body, type);

  beforeAll(async () => {
    api = await startInProcessApi();
  });
  afterAll(() => api.stop());

  it('takes a migration without a target, with the defaults', async () => {
    const res = await call('POST', SMIG, {
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'ServiceMigration',
      metadata: { generateName: 'web-1-' },
      spec: { instanceRef: { name: 'web-1' } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.metadata.name).toMatch(/^web-1-[a-z0-9]+$/);
    expect(res.body.spec).toEqual({ instanceRef: { name: 'web-1' }, mode: 'Auto', timeoutSeconds: 300 });
  });

  it('refuses to change the spec once created, and writes nothing', async () => {
    const created = await call('POST', SMIG, {
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'ServiceMigration',
      metadata: { name: 'fixed' },
      spec: { instanceRef: { name: 'web-1' }, targetHost: 'node-2' },
    });
    expect(created.status).toBe(201);
    const patched = await call('PATCH', `${SMIG}/fixed`, { spec: { targetHost: 'node-3' } }, MERGE);
    expect(patched.status).toBe(422);
    expect(patched.body).toMatchObject({ kind: 'Status', reason: 'Invalid' });
    expect(patched.body.message).toMatch(/spec: field is immutable: .*create a new one/);
    const put = await call('PUT', `${SMIG}/fixed`, {
      ...created.body,
      spec: { ...created.body.spec, mode: 'Cold' },
    });
    expect(put.status).toBe(422);
    const now = await call('GET', `${SMIG}/fixed`);
    expect(now.body.spec.targetHost).toBe('node-2');
    expect(now.body.metadata.resourceVersion).toBe(created.body.metadata.resourceVersion);
    // Labels and the status still change.
    const labelled = await call('PATCH', `${SMIG}/fixed`, { metadata: { labels: { a: 'b' } } }, MERGE);
    expect(labelled.status).toBe(200);
    const status = await call('PATCH', `${SMIG}/fixed/status`, { status: { phase: 'Running' } }, MERGE);
    expect(status.status).toBe(200);
  });
});
