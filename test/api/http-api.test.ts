// End-to-end tests of the HTTP API against a real xenosd child process on 127.0.0.1: auth, CRUD,
// conflicts, validation, patches, the status subresource, watch, dryRun, body limits, Tables,
// discovery, OpenAPI, events, and that a restart keeps the data.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDataDir, startXenosd, type XenosdProcess } from '../daemon/xenosd-process.ts';

const BASE = '/apis/xenos.io/v1alpha1/namespaces/default/serviceinstances';
const JSON_CT = { 'Content-Type': 'application/json' };

let xd: XenosdProcess;

function instance(name: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name, labels: { app: name } },
    spec: { templateRef: { name: 'tpl' } },
    ...extra,
  };
}

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = JSON_CT) {
  const res = await xd.api(path, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

async function create(name: string, extra: Record<string, unknown> = {}) {
  const r = await call('POST', BASE, instance(name, extra));
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

beforeAll(async () => {
  xd = await startXenosd();
});

afterAll(async () => {
  await xd?.stop();
  if (xd) removeDataDir(xd.dataDir);
});

describe('authentication', () => {
  it('answers health probes without a token', async () => {
    const res = await fetch(xd.url + '/healthz');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
  });

  it('rejects requests without a token or with a wrong one with a 401 Status', async () => {
    const variants: Record<string, string>[] = [
      {},
      { Authorization: 'Bearer nope' },
      { Authorization: `Basic ${xd.token}` },
    ];
    for (const headers of variants) {
      const res = await fetch(xd.url + BASE, { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({
        kind: 'Status',
        status: 'Failure',
        reason: 'Unauthorized',
        code: 401,
      });
    }
  });
});

describe('objects', () => {
  it('creates, reads, lists by label, replaces and deletes', async () => {
    const created = await create('crud');
    expect(created).toMatchObject({
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'ServiceInstance',
      metadata: { name: 'crud', namespace: 'default', generation: 1 },
      spec: { runStrategy: 'Always' }, // the CRD default
    });
    await create('other');
    const got = await call('GET', `${BASE}/crud`);
    expect(got.body.metadata.uid).toBe(created.metadata.uid);

    const list = await call('GET', `${BASE}?labelSelector=app%3Dcrud`);
    expect(list.body.kind).toBe('ServiceInstanceList');
    expect(list.body.items.map((o: any) => o.metadata.name)).toEqual(['crud']);
    expect(list.body.items[0].kind).toBe('ServiceInstance');
    expect(Number(list.body.metadata.resourceVersion)).toBeGreaterThan(0);

    const all = await call('GET', '/apis/xenos.io/v1alpha1/serviceinstances?limit=1');
    expect(all.body.items).toHaveLength(1);
    expect(all.body.metadata.continue).toBeTruthy();

    const replaced = await call('PUT', `${BASE}/crud`, {
      ...got.body,
      spec: { templateRef: { name: 'tpl2' } },
    });
    expect(replaced.status).toBe(200);
    expect(replaced.body.spec.templateRef.name).toBe('tpl2');
    expect(replaced.body.metadata.generation).toBe(2);

    const del = await call('DELETE', `${BASE}/crud`, { propagationPolicy: 'Background' });
    expect(del.body).toMatchObject({ kind: 'Status', status: 'Success', details: { name: 'crud' } });
    const gone = await call('GET', `${BASE}/crud`);
    expect(gone.status).toBe(404);
    expect(gone.body).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404 });
    expect(gone.body.message).toContain('"crud" not found');
  });

  it('answers 409 for a duplicate create and for a stale resourceVersion', async () => {
    const first = await create('dup');
    const again = await call('POST', BASE, instance('dup'));
    expect(again.status).toBe(409);
    expect(again.body.reason).toBe('AlreadyExists');
    await call('PUT', `${BASE}/dup`, { ...first, spec: { templateRef: { name: 'b' } } });
    const stale = await call('PUT', `${BASE}/dup`, { ...first, spec: { templateRef: { name: 'c' } } });
    expect(stale.status).toBe(409);
    expect(stale.body.reason).toBe('Conflict');
    expect((await call('GET', `${BASE}/dup`)).body.spec.templateRef.name).toBe('b');
  });

  it('answers 422 Invalid with one cause per field', async () => {
    const bad = instance('bad-one', { spec: { runStrategy: 'Sometimes' } });
    const r = await call('POST', BASE, bad);
    expect(r.status).toBe(422);
    expect(r.body.reason).toBe('Invalid');
    const fields = r.body.details.causes.map((c: any) => c.field).sort();
    expect(fields).toEqual(['spec.runStrategy', 'spec.templateRef']);
    expect(r.body.details.causes.find((c: any) => c.field === 'spec.runStrategy').message).toContain(
      'Sometimes',
    );
    expect((await call('GET', `${BASE}/bad-one`)).status).toBe(404);
  });

  it('rejects unknown fields when strict and warns (and prunes) when asked to', async () => {
    const body = instance('strict', { spec: { templateRef: { name: 't' }, x: 1 } });
    const strict = await call('POST', `${BASE}?fieldValidation=Strict`, body);
    expect(strict.status).toBe(400);
    expect(strict.body.message).toBe('strict decoding error: unknown field "spec.x"');
    const warn = await call('POST', `${BASE}?fieldValidation=Warn`, body);
    expect(warn.status).toBe(201);
    expect(warn.headers.get('warning')).toBe('299 - "unknown field \\"spec.x\\""');
    expect(warn.body.spec.x).toBeUndefined();
  });

  it('rejects bodies that are not JSON, wrong media types and a mismatched namespace', async () => {
    const notJson = await call('POST', BASE, '{"apiVersion": ');
    expect(notJson.status).toBe(400);
    expect(notJson.body.message).toContain('not valid JSON');
    const yaml = await call('POST', BASE, 'metadata:\n  name: from-yaml\nspec:\n  templateRef: {name: t}\n', {
      'Content-Type': 'application/yaml',
    });
    expect(yaml.status).toBe(201);
    const badYaml = await call('POST', BASE, 'metadata: [\n', { 'Content-Type': 'application/yaml' });
    expect(badYaml.body.message).toMatch(/not valid YAML at line \d+/);
    const proto = await call('POST', BASE, 'x', { 'Content-Type': 'application/vnd.kubernetes.protobuf' });
    expect(proto.status).toBe(415);
    const ns = await call('POST', BASE, { ...instance('ns'), metadata: { name: 'ns', namespace: 'other' } });
    expect(ns.status).toBe(400);
    expect(ns.body.message).toContain('namespace');
  });

  it('caps request bodies with 413', async () => {
    const big = JSON.stringify(
      instance('big', { spec: { templateRef: { name: 't' }, pad: 'x'.repeat(4 * 1024 * 1024) } }),
    );
    const r = await call('POST', BASE, big);
    expect(r.status).toBe(413);
    expect(r.body.reason).toBe('RequestEntityTooLarge');
  });
});

describe('patches and status', () => {
  it('merge-patches the spec and bumps generation', async () => {
    await create('mp');
    const r = await call(
      'PATCH',
      `${BASE}/mp`,
      { spec: { host: 'h2' }, metadata: { labels: { app: null, tier: 'x' } } },
      {
        'Content-Type': 'application/merge-patch+json',
      },
    );
    expect(r.status).toBe(200);
    expect(r.body.spec).toMatchObject({ host: 'h2', templateRef: { name: 'tpl' } });
    expect(r.body.metadata.labels).toEqual({ tier: 'x' });
    expect(r.body.metadata.generation).toBe(2);
  });

  it('applies JSON patches and rejects ones that do not apply', async () => {
    await create('jp');
    const ok = await call(
      'PATCH',
      `${BASE}/jp`,
      [{ op: 'replace', path: '/spec/templateRef/name', value: 'new' }],
      {
        'Content-Type': 'application/json-patch+json',
      },
    );
    expect(ok.body.spec.templateRef.name).toBe('new');
    const bad = await call('PATCH', `${BASE}/jp`, [{ op: 'remove', path: '/spec/nothing' }], {
      'Content-Type': 'application/json-patch+json',
    });
    expect(bad.status).toBe(400);
    const smp = await call(
      'PATCH',
      `${BASE}/jp`,
      {},
      { 'Content-Type': 'application/strategic-merge-patch+json' },
    );
    expect(smp.status).toBe(415);
  });

  it('server-side apply creates, then merges the applied fields', async () => {
    const ct = { 'Content-Type': 'application/apply-patch+yaml' };
    const first = await call('PATCH', `${BASE}/ssa?fieldManager=kubectl`, instance('ssa'), ct);
    expect(first.status).toBe(201);
    const yaml =
      'apiVersion: xenos.io/v1alpha1\nkind: ServiceInstance\nmetadata:\n  name: ssa\nspec:\n  host: h9\n';
    const second = await call('PATCH', `${BASE}/ssa?fieldManager=kubectl`, yaml, ct);
    expect(second.status).toBe(200);
    expect(second.body.spec).toMatchObject({ host: 'h9', templateRef: { name: 'tpl' } });
  });

  it('keeps status apart: main writes ignore it, /status writes only it', async () => {
    const obj = await create('st');
    const put = await call('PUT', `${BASE}/st`, { ...obj, status: { phase: 'Hacked' } });
    expect(put.body.status?.phase).toBeUndefined();
    const status = { phase: 'Running', observedGeneration: 1 };
    const sp = await call(
      'PATCH',
      `${BASE}/st/status`,
      { status, spec: { host: 'ignored' } },
      {
        'Content-Type': 'application/merge-patch+json',
      },
    );
    expect(sp.status).toBe(200);
    expect(sp.body.status).toMatchObject(status);
    expect(sp.body.spec.host).toBeUndefined();
    expect(sp.body.metadata.generation).toBe(1);
    const got = await call('GET', `${BASE}/st/status`);
    expect(got.body.status.phase).toBe('Running');
    const badStatus = await call('PUT', `${BASE}/st/status`, {
      ...got.body,
      status: { phase: 'Running', restarts: 'many' },
    });
    expect(badStatus.status).toBe(422);
    expect(badStatus.body.details.causes[0].field).toBe('status.restarts');
  });
});

describe('dryRun', () => {
  it('persists nothing on create, update, patch or delete', async () => {
    const c = await call('POST', `${BASE}?dryRun=All`, instance('dry'));
    expect(c.status).toBe(201);
    expect(c.body.metadata.name).toBe('dry');
    expect((await call('GET', `${BASE}/dry`)).status).toBe(404);

    const obj = await create('dry');
    const p = await call(
      'PATCH',
      `${BASE}/dry?dryRun=All`,
      { spec: { host: 'h' } },
      { 'Content-Type': 'application/merge-patch+json' },
    );
    expect(p.body.spec.host).toBe('h');
    const u = await call('PUT', `${BASE}/dry?dryRun=All`, { ...obj, spec: { templateRef: { name: 'z' } } });
    expect(u.body.spec.templateRef.name).toBe('z');
    const d = await call('DELETE', `${BASE}/dry?dryRun=All`);
    expect(d.status).toBe(200);
    const after = await call('GET', `${BASE}/dry`);
    expect(after.body.metadata.resourceVersion).toBe(obj.metadata.resourceVersion);
    expect(after.body.spec).toEqual(obj.spec);
  });
});

describe('watch', () => {
  it('streams changes after a resourceVersion as JSON lines, with headers at once', async () => {
    const obj = await create('w');
    const ctrl = new AbortController();
    const res = await xd.api(
      `${BASE}?watch=true&fieldSelector=metadata.name%3Dw&resourceVersion=${obj.metadata.resourceVersion}&timeoutSeconds=20`,
      {
        signal: ctrl.signal,
      },
    );
    expect(res.status).toBe(200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    const next = async () => {
      while (!buf.includes('\n')) {
        const { value, done } = await reader.read();
        if (done) throw new Error('watch ended');
        buf += value;
      }
      const line = buf.slice(0, buf.indexOf('\n'));
      buf = buf.slice(buf.indexOf('\n') + 1);
      return JSON.parse(line);
    };
    try {
      await call(
        'PATCH',
        `${BASE}/w`,
        { spec: { host: 'h1' } },
        { 'Content-Type': 'application/merge-patch+json' },
      );
      const ev = await next();
      expect(ev.type).toBe('MODIFIED');
      expect(ev.object).toMatchObject({ kind: 'ServiceInstance', spec: { host: 'h1' } });
      await create('not-me');
      await call('DELETE', `${BASE}/w`);
      const del = await next();
      expect(del.type).toBe('DELETED');
      expect(del.object.metadata.name).toBe('w');
    } finally {
      ctrl.abort();
    }
  });

  it('sends current objects as ADDED when no resourceVersion is given, and Tables on request', async () => {
    await create('wt');
    const res = await xd.api(`${BASE}?watch=1&fieldSelector=metadata.name%3Dwt&timeoutSeconds=1`, {
      headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' },
    });
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0].type).toBe('ADDED');
    expect(lines[0].object.kind).toBe('Table');
    expect(lines[0].object.rows[0].cells[0]).toBe('wt');
  });
});

describe('tables, discovery and OpenAPI', () => {
  it('returns a Table with the printer columns', async () => {
    await create('tbl');
    await call(
      'PATCH',
      `${BASE}/tbl/status`,
      {
        status: {
          phase: 'Running',
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'Up',
              message: '',
              lastTransitionTime: '2026-01-01T00:00:00Z',
            },
          ],
        },
      },
      {
        'Content-Type': 'application/merge-patch+json',
      },
    );
    const r = await call('GET', `${BASE}?fieldSelector=metadata.name%3Dtbl`, undefined, {
      Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json',
    });
    expect(r.body.kind).toBe('Table');
    const names = r.body.columnDefinitions.map((c: any) => c.name);
    expect(names.slice(0, 6)).toEqual(['Name', 'Template', 'Host', 'Phase', 'Ready', 'Age']);
    const row = r.body.rows[0].cells;
    expect(row.slice(0, 5)).toEqual(['tbl', 'tpl', null, 'Running', 'True']);
    expect(row[5]).toMatch(/^\d+s$/);
    expect(r.body.columnDefinitions.find((c: any) => c.name === 'Driver').priority).toBe(1);
  });

  it('serves discovery and OpenAPI v3 for kubectl', async () => {
    expect((await call('GET', '/apis')).body.groups[0].name).toBe('xenos.io');
    const rl = await call('GET', '/apis/xenos.io/v1alpha1');
    const names = rl.body.resources.map((r: any) => r.name);
    expect(names).toEqual(expect.arrayContaining(['serviceinstances', 'serviceinstances/status', 'hosts']));
    const si = rl.body.resources.find((r: any) => r.name === 'serviceinstances');
    expect(si).toMatchObject({ kind: 'ServiceInstance', namespaced: true, shortNames: ['si'] });
    expect(rl.body.resources.find((r: any) => r.name === 'hosts').namespaced).toBe(false);
    expect((await call('GET', '/api')).status).toBe(404);
    expect((await call('GET', '/openapi/v2')).status).toBe(404);
    expect((await call('GET', '/version')).body.major).toBe('1');
    const index = await call('GET', '/openapi/v3');
    const url = index.body.paths['apis/xenos.io/v1alpha1'].serverRelativeURL;
    const doc = await call('GET', url);
    const item = doc.body.paths['/apis/xenos.io/v1alpha1/namespaces/{namespace}/serviceinstances/{name}'];
    expect(item.get['x-kubernetes-group-version-kind']).toEqual({
      group: 'xenos.io',
      version: 'v1alpha1',
      kind: 'ServiceInstance',
    });
    expect(item.patch.parameters.map((p: any) => p.name)).toContain('fieldValidation');
    expect(Object.keys(item.patch.requestBody.content)).not.toContain(
      'application/strategic-merge-patch+json',
    );
  });

  it('answers unknown paths and methods with a Status', async () => {
    expect((await call('GET', '/apis/xenos.io/v1alpha1/namespaces/default/nothings')).body.reason).toBe(
      'NotFound',
    );
    const m = await call('DELETE', BASE);
    expect(m.status).toBe(405);
    expect(m.body.kind).toBe('Status');
  });
});

describe('cluster-scoped kinds and events', () => {
  it('serves Hosts without a namespace', async () => {
    const host = { apiVersion: 'xenos.io/v1alpha1', kind: 'Host', metadata: { name: 'h1' }, spec: {} };
    const r = await call('POST', '/apis/xenos.io/v1alpha1/hosts', host);
    expect(r.status).toBe(201);
    expect(r.body.metadata.namespace).toBeUndefined();
    expect((await call('GET', '/apis/xenos.io/v1alpha1/hosts/h1')).status).toBe(200);
    expect((await call('GET', '/apis/xenos.io/v1alpha1/namespaces/default/hosts/h1')).status).toBe(404);
  });

  it('stores events and lists them by involved object', async () => {
    const ev = (name: string, obj: string) => ({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name },
      involvedObject: { kind: 'ServiceInstance', name: obj, namespace: 'default' },
      reason: 'Started',
      message: `started ${obj}`,
      type: 'Normal',
    });
    expect((await call('POST', '/api/v1/namespaces/default/events', ev('e1', 'a'))).status).toBe(201);
    expect((await call('POST', '/api/v1/namespaces/default/events', ev('e2', 'b'))).status).toBe(201);
    const bad = await call('POST', '/api/v1/namespaces/default/events', {
      ...ev('e3', 'c'),
      involvedObject: {},
    });
    expect(bad.status).toBe(422);
    const list = await call(
      'GET',
      '/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Da,involvedObject.kind%3DServiceInstance',
    );
    expect(list.body.kind).toBe('EventList');
    expect(list.body.items.map((e: any) => e.metadata.name)).toEqual(['e1']);
    const badSel = await call('GET', '/api/v1/namespaces/default/events?fieldSelector=spec.x%3D1');
    expect(badSel.status).toBe(400);
  });
});

describe('restart', () => {
  it('exits 0 on SIGTERM and keeps objects and the token across a restart', async () => {
    await create('durable');
    const dataDir = xd.dataDir;
    const token = xd.token;
    expect(await xd.stop()).toBe(0);
    xd = await startXenosd({ dataDir });
    expect(xd.token).toBe(token);
    const got = await call('GET', `${BASE}/durable`);
    expect(got.status).toBe(200);
    expect(got.body.spec.templateRef.name).toBe('tpl');
  });
});
