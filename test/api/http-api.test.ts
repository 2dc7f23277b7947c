// End-to-end tests of the HTTP API against a real xenosd child process on 127.0.0.1: auth, CRUD,
// conflicts, validation, patches, the status subresource, watch, dryRun, body limits, Tables,
// discovery, OpenAPI, events, and that a restart keeps the data.
//
// xenosd runs its controllers and scheduler: a ServiceInstance is bound to the host (spec.host, a new
// generation), gets the `xenos.io/domain` finalizer, status and Events. So the generic semantics
// (CRUD, conflicts, patches, status apart, dryRun, watch) are checked on ServiceDeployment, with its
// controller left out (`--controllers=-servicedeployment`), so nothing but the API touches them. What the
// controllers do to a ServiceInstance is asserted as such (binding, finalizer, Table of the live object).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForDeletion, waitForObject } from '../daemon/wait-for-object.ts';
import { removeDataDir, startXenosd, type XenosdProcess } from '../daemon/xenosd-process.ts';

/** ServiceInstances: reconciled by the controllers xenosd runs. */
const BASE = '/apis/xenos.io/v1alpha1/namespaces/default/serviceinstances';
/** ServiceDeployments: no controller touches them here; used for the generic API semantics. */
const SD = '/apis/xenos.io/v1alpha1/namespaces/default/servicedeployments';
const JSON_CT = { 'Content-Type': 'application/json' };
const MERGE_CT = { 'Content-Type': 'application/merge-patch+json' };
const DOMAIN_FINALIZER = 'xenos.io/domain';

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

function deployment(name: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceDeployment',
    metadata: { name, labels: { app: name } },
    spec: { template: { spec: { templateRef: { name: 'tpl' } } } },
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

async function createDeployment(name: string, extra: Record<string, unknown> = {}) {
  const r = await call('POST', SD, deployment(name, extra));
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

/** The template spec of a deployment with another template name. */
function templateSpec(template: string) {
  return { template: { spec: { templateRef: { name: template } } } };
}

beforeAll(async () => {
  xd = await startXenosd({ args: ['--controllers=-servicedeployment'] });
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
    const created = await createDeployment('crud');
    expect(created).toMatchObject({
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'ServiceDeployment',
      metadata: { name: 'crud', namespace: 'default', generation: 1 },
      // the CRD defaults, nested ones included
      spec: { replicas: 1, template: { spec: { runStrategy: 'Always' } } },
    });
    await createDeployment('other');
    const got = await call('GET', `${SD}/crud`);
    expect(got.body.metadata.uid).toBe(created.metadata.uid);

    const list = await call('GET', `${SD}?labelSelector=app%3Dcrud`);
    expect(list.body.kind).toBe('ServiceDeploymentList');
    expect(list.body.items.map((o: any) => o.metadata.name)).toEqual(['crud']);
    expect(list.body.items[0].kind).toBe('ServiceDeployment');
    expect(Number(list.body.metadata.resourceVersion)).toBeGreaterThan(0);

    const all = await call('GET', '/apis/xenos.io/v1alpha1/servicedeployments?limit=1');
    expect(all.body.items).toHaveLength(1);
    expect(all.body.metadata.continue).toBeTruthy();

    const replaced = await call('PUT', `${SD}/crud`, { ...got.body, spec: templateSpec('tpl2') });
    expect(replaced.status).toBe(200);
    expect(replaced.body.spec.template.spec.templateRef.name).toBe('tpl2');
    expect(replaced.body.metadata.generation).toBe(2);

    const del = await call('DELETE', `${SD}/crud`, { propagationPolicy: 'Background' });
    expect(del.body).toMatchObject({ kind: 'Status', status: 'Success', details: { name: 'crud' } });
    const gone = await call('GET', `${SD}/crud`);
    expect(gone.status).toBe(404);
    expect(gone.body).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404 });
    expect(gone.body.message).toContain('"crud" not found');
  });

  it('a ServiceInstance is bound by the scheduler and kept by its finalizer until the controller is done', async () => {
    const created = await create('fin');
    expect(created.metadata.generation).toBe(1);
    const bound = await waitForObject(
      xd,
      BASE,
      'fin',
      (o) => o.spec.host === 'test-host' && o.metadata.finalizers?.includes(DOMAIN_FINALIZER),
      { what: 'the binding to test-host and the domain finalizer' },
    );
    // The binding is a spec change: a new generation. The finalizer is metadata: none.
    expect(bound.metadata.generation).toBe(2);
    expect(bound.spec.templateRef.name).toBe('tpl');

    const del = await call('DELETE', `${BASE}/fin`);
    expect(del.status).toBe(200);
    // Finalizers pending: the answer is the object, marked for deletion, as Kubernetes does.
    expect(del.body.kind).toBe('ServiceInstance');
    expect(del.body.metadata.deletionTimestamp).toBeTruthy();
    await waitForDeletion(xd, BASE, 'fin');
    expect((await call('GET', `${BASE}/fin`)).status).toBe(404);
  });

  it('answers 409 for a duplicate create and for a stale resourceVersion', async () => {
    const first = await createDeployment('dup');
    const again = await call('POST', SD, deployment('dup'));
    expect(again.status).toBe(409);
    expect(again.body.reason).toBe('AlreadyExists');
    expect((await call('PUT', `${SD}/dup`, { ...first, spec: templateSpec('b') })).status).toBe(200);
    const stale = await call('PUT', `${SD}/dup`, { ...first, spec: templateSpec('c') });
    expect(stale.status).toBe(409);
    expect(stale.body.reason).toBe('Conflict');
    expect((await call('GET', `${SD}/dup`)).body.spec.template.spec.templateRef.name).toBe('b');
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
    await createDeployment('mp');
    const r = await call(
      'PATCH',
      `${SD}/mp`,
      { spec: { replicas: 3 }, metadata: { labels: { app: null, tier: 'x' } } },
      MERGE_CT,
    );
    expect(r.status).toBe(200);
    expect(r.body.spec).toMatchObject({ replicas: 3, template: { spec: { templateRef: { name: 'tpl' } } } });
    expect(r.body.metadata.labels).toEqual({ tier: 'x' });
    expect(r.body.metadata.generation).toBe(2);
    const labelsOnly = await call('PATCH', `${SD}/mp`, { metadata: { labels: { tier: 'y' } } }, MERGE_CT);
    expect(labelsOnly.body.metadata.generation).toBe(2);
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

  it('server-side apply: creates, shares, refuses a conflict unless forced, removes what is no longer applied', async () => {
    const ct = { 'Content-Type': 'application/apply-patch+yaml' };
    const apply = (manager: string, yaml: string, force = false) =>
      call('PATCH', `${BASE}/ssa?fieldManager=${manager}${force ? '&force=true' : ''}`, yaml, ct);
    const doc = (spec: string, meta = '') =>
      `apiVersion: xenos.io/v1alpha1\nkind: ServiceInstance\nmetadata:\n  name: ssa\n${meta}spec:\n${spec}`;
    const first = await apply('kubectl', doc('  templateRef: {name: tpl}\n', '  labels: {app: ssa}\n'));
    expect(first.status).toBe(201);
    expect(first.body.metadata.managedFields).toEqual([
      expect.objectContaining({
        manager: 'kubectl',
        operation: 'Apply',
        fieldsType: 'FieldsV1',
        fieldsV1: {
          'f:metadata': { 'f:labels': { 'f:app': {} } },
          'f:spec': { 'f:templateRef': { 'f:name': {} } },
        },
      }),
    ]);
    expect((await call('GET', `${BASE}/ssa`)).body.metadata.managedFields).toHaveLength(1);
    // Another manager applies a field nobody owns: both keep theirs.
    const second = await apply('other', doc('  host: h9\n'));
    expect(second.status).toBe(200);
    expect(second.body.spec).toMatchObject({ host: 'h9', templateRef: { name: 'tpl' } });
    expect(second.body.metadata.managedFields.map((m: any) => m.manager)).toEqual(['kubectl', 'other']);
    // Changing kubectl's field is a conflict, named as kubectl prints it; nothing changes.
    const conflict = await apply('other', doc('  host: h9\n  templateRef: {name: mine}\n'));
    expect(conflict.status).toBe(409);
    expect(conflict.body.message).toBe(
      'Apply failed with 1 conflict: conflict with "kubectl" using xenos.io/v1alpha1: .spec.templateRef.name',
    );
    expect(conflict.body.details.causes).toEqual([
      {
        reason: 'FieldManagerConflict',
        field: '.spec.templateRef.name',
        message: expect.stringContaining('"kubectl"'),
      },
    ]);
    expect((await call('GET', `${BASE}/ssa`)).body.spec.templateRef.name).toBe('tpl');
    // Applying the same value is no conflict (the field is shared); forcing takes it.
    expect((await apply('other', doc('  host: h9\n  templateRef: {name: tpl}\n'))).status).toBe(200);
    const forced = await apply('other', doc('  host: h9\n  templateRef: {name: mine}\n'), true);
    expect(forced.status).toBe(200);
    expect(forced.body.spec.templateRef.name).toBe('mine');
    const kubectl = forced.body.metadata.managedFields.find((m: any) => m.manager === 'kubectl');
    expect(kubectl.fieldsV1).toEqual({ 'f:metadata': { 'f:labels': { 'f:app': {} } } });
    // kubectl applies without its label: the label goes (nobody else owns it); other's fields stay.
    const dropped = await apply('kubectl', doc('  templateRef: {name: mine}\n'));
    expect(dropped.status).toBe(200);
    expect(dropped.body.metadata.labels ?? {}).toEqual({});
    expect(dropped.body.spec).toMatchObject({ host: 'h9', templateRef: { name: 'mine' } });
    // An update (merge patch) takes the fields it changes from their owners.
    const patched = await call(
      'PATCH',
      `${BASE}/ssa?fieldManager=editor`,
      { spec: { host: 'h10' } },
      { 'Content-Type': 'application/merge-patch+json' },
    );
    expect(patched.status).toBe(200);
    const editor = patched.body.metadata.managedFields.find((m: any) => m.manager === 'editor');
    expect(editor).toMatchObject({ operation: 'Update', fieldsV1: { 'f:spec': { 'f:host': {} } } });
    const other = patched.body.metadata.managedFields.find((m: any) => m.manager === 'other');
    expect(other.fieldsV1['f:spec']['f:host']).toBeUndefined();
    expect((await call('PATCH', `${BASE}/ssa`, doc('  host: h1\n'), ct)).status).toBe(400); // no fieldManager
  });

  it('keeps status apart: main writes ignore it, /status writes only it', async () => {
    const obj = await createDeployment('st');
    const put = await call('PUT', `${SD}/st`, { ...obj, status: { phase: 'Hacked' } });
    expect(put.status).toBe(200);
    expect(put.body.status?.phase).toBeUndefined();
    const status = { phase: 'Available', observedGeneration: 1, replicas: 1 };
    const sp = await call('PATCH', `${SD}/st/status`, { status, spec: { replicas: 9 } }, MERGE_CT);
    expect(sp.status).toBe(200);
    expect(sp.body.status).toMatchObject(status);
    expect(sp.body.spec.replicas).toBe(1);
    expect(sp.body.metadata.generation).toBe(1);
    const got = await call('GET', `${SD}/st/status`);
    expect(got.body.status.phase).toBe('Available');
    const badStatus = await call('PUT', `${SD}/st/status`, {
      ...got.body,
      status: { phase: 'Available', replicas: 'many' },
    });
    expect(badStatus.status).toBe(422);
    expect(badStatus.body.details.causes[0].field).toBe('status.replicas');
  });
});

describe('dryRun', () => {
  it('persists nothing on create, update, patch or delete', async () => {
    const c = await call('POST', `${SD}?dryRun=All`, deployment('dry'));
    expect(c.status).toBe(201);
    expect(c.body.metadata.name).toBe('dry');
    expect((await call('GET', `${SD}/dry`)).status).toBe(404);

    const obj = await createDeployment('dry');
    const p = await call('PATCH', `${SD}/dry?dryRun=All`, { spec: { replicas: 5 } }, MERGE_CT);
    expect(p.body.spec.replicas).toBe(5);
    const u = await call('PUT', `${SD}/dry?dryRun=All`, { ...obj, spec: templateSpec('z') });
    expect(u.body.spec.template.spec.templateRef.name).toBe('z');
    const d = await call('DELETE', `${SD}/dry?dryRun=All`);
    expect(d.status).toBe(200);
    const after = await call('GET', `${SD}/dry`);
    expect(after.body.metadata.resourceVersion).toBe(obj.metadata.resourceVersion);
    expect(after.body.spec).toEqual(obj.spec);
  });
});

describe('watch', () => {
  it('streams changes after a resourceVersion as JSON lines, with headers at once', async () => {
    const obj = await createDeployment('w');
    const ctrl = new AbortController();
    const res = await xd.api(
      `${SD}?watch=true&fieldSelector=metadata.name%3Dw&resourceVersion=${obj.metadata.resourceVersion}&timeoutSeconds=20`,
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
      await call('PATCH', `${SD}/w`, { spec: { replicas: 2 } }, MERGE_CT);
      const ev = await next();
      expect(ev.type).toBe('MODIFIED');
      expect(ev.object).toMatchObject({ kind: 'ServiceDeployment', spec: { replicas: 2 } });
      await createDeployment('not-me');
      await call('DELETE', `${SD}/w`);
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
    // The object as it is now comes first, as ADDED; the controllers' writes to it (binding, status)
    // may follow within the second, as MODIFIED rows of the same Table.
    expect(lines[0].type).toBe('ADDED');
    expect(lines[0].object.kind).toBe('Table');
    expect(lines[0].object.rows[0].cells[0]).toBe('wt');
    for (const later of lines.slice(1)) {
      expect(later.type).toBe('MODIFIED');
      expect(later.object.rows[0].cells[0]).toBe('wt');
    }
  });
});

describe('tables, discovery and OpenAPI', () => {
  it('returns a Table with the printer columns of the live object', async () => {
    await create('tbl');
    // The controllers bind it and write its status; the Table must show what is there.
    await waitForObject(
      xd,
      BASE,
      'tbl',
      (o) => o.spec.host !== undefined && o.status?.conditions?.some((c: any) => c.type === 'Ready'),
      { what: 'the binding and a Ready condition' },
    );
    const r = await call('GET', `${BASE}?fieldSelector=metadata.name%3Dtbl&includeObject=Object`, undefined, {
      Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json',
    });
    expect(r.body.kind).toBe('Table');
    const names = r.body.columnDefinitions.map((c: any) => c.name);
    expect(names.slice(0, 6)).toEqual(['Name', 'Template', 'Host', 'Phase', 'Ready', 'Age']);
    expect(r.body.columnDefinitions.find((c: any) => c.name === 'Driver').priority).toBe(1);
    // Cells and object come from one read, so they agree even while the controller writes.
    const { cells, object } = r.body.rows[0];
    const ready = object.status.conditions.find((c: any) => c.type === 'Ready');
    expect(cells.slice(0, 5)).toEqual(['tbl', 'tpl', 'test-host', object.status.phase, ready.status]);
    expect(cells[3]).toEqual(expect.any(String));
    expect(cells[5]).toMatch(/^\d+s$/);

    // A column whose field is not set is null; status written through /status shows at once.
    await createDeployment('tbl-sd');
    const sdTable = async () =>
      (
        await call('GET', `${SD}?fieldSelector=metadata.name%3Dtbl-sd`, undefined, {
          Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json',
        })
      ).body;
    const before = await sdTable();
    expect(before.columnDefinitions.map((c: any) => c.name).slice(0, 5)).toEqual([
      'Name',
      'Desired',
      'Current',
      'Ready',
      'Age',
    ]);
    expect(before.rows[0].cells.slice(0, 4)).toEqual(['tbl-sd', 1, null, null]);
    await call('PATCH', `${SD}/tbl-sd/status`, { status: { replicas: 1, readyReplicas: 0 } }, MERGE_CT);
    expect((await sdTable()).rows[0].cells.slice(0, 4)).toEqual(['tbl-sd', 1, 1, 0]);
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
    xd = await startXenosd({ dataDir, args: ['--controllers=-servicedeployment'] });
    expect(xd.token).toBe(token);
    const got = await call('GET', `${BASE}/durable`);
    expect(got.status).toBe(200);
    expect(got.body.spec.templateRef.name).toBe('tpl');
  });
});
