// The notice board end-to-end: a real xenosd (process driver) runs a real service, and the token that
// service was given is used against the API as the service would. It may read its instance, register
// endpoints (source: registered) and report its ServiceHealthy condition — through PATCH (JSON and
// merge) and PUT of /status — and nothing else: other status fields, the template's endpoints, the
// host's conditions and the main resource are 403 with a message saying what it may change.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessDriver } from '../../src/drivers/process/process-driver.ts';
import { waitForDeletion, waitForObject } from '../daemon/wait-for-object.ts';
import { removeDataDir, startXenosd, type XenosdProcess } from '../daemon/xenosd-process.ts';

const IMAGE = join(import.meta.dirname, 'fixtures', 'notice-board-service');
const NS = '/apis/xenos.io/v1alpha1/namespaces/default';
const INSTANCES = `${NS}/serviceinstances`;
const JSON_PATCH = { 'Content-Type': 'application/json-patch+json' };
const MERGE_PATCH = { 'Content-Type': 'application/merge-patch+json' };

let xd: XenosdProcess;
/** What the service inside the domain was given. */
let service: {
  api: string;
  token: string;
  namespace: string;
  instance: string;
  tokenFile: string;
  tokenMode: string;
  tokenOwner: number;
  uid: number;
  envToken: string | null;
};

type Obj = Record<string, any>;

async function asService(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(service.api + path, {
    method,
    headers: { Authorization: `Bearer ${service.token}`, 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Obj) : undefined };
}

async function asAdmin(path: string): Promise<Obj> {
  const res = await xd.api(path);
  expect(res.status).toBe(200);
  return (await res.json()) as Obj;
}

const registered = (name: string, port: number) => ({
  name,
  address: '127.0.0.1',
  port,
  protocol: 'TCP',
  source: 'registered',
});

function serviceHealthy(status: 'True' | 'False', reason: string) {
  return {
    type: 'ServiceHealthy',
    status,
    reason,
    message: `the service says ${reason}`,
    lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

beforeAll(async () => {
  xd = await startXenosd({ args: ['--driver', 'process'] });
  const create = async (path: string, obj: Obj) => {
    const res = await xd.api(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(obj),
    });
    expect(res.status, await res.clone().text()).toBe(201);
  };
  await create(`${NS}/servicetemplates`, {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceTemplate',
    metadata: { name: 'board' },
    spec: {
      image: { path: IMAGE },
      process: { command: ['node', 'server.mjs'] },
      ports: [{ name: 'http', port: 8080, appProtocol: 'http' }],
      healthCheck: { tcp: { port: 'http' }, periodSeconds: 1 },
    },
  });
  await create(INSTANCES, {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name: 'board-1' },
    spec: { templateRef: { name: 'board' } },
  });
  const ready = await waitForObject(
    xd,
    INSTANCES,
    'board-1',
    (o) => o.status?.conditions?.some((c: Obj) => c.type === 'Ready' && c.status === 'True'),
    { what: 'Ready', timeoutMs: 30_000 },
  );
  const url = ready.status.endpoints.find((e: Obj) => e.name === 'http').url as string;
  service = (await (await fetch(url)).json()) as typeof service;
}, 60_000);

afterAll(async () => {
  if (!xd) return;
  // Domains outlive xenosd by design: delete the instance first, so its controller stops the service.
  await xd.api(`${INSTANCES}/board-1`, { method: 'DELETE' }).catch(() => undefined);
  await waitForDeletion(xd, INSTANCES, 'board-1', { timeoutMs: 20_000 }).catch(() => undefined);
  await xd.stop();
  // Should the deletion not have finished, no process may be left behind.
  const driver = new ProcessDriver({}, { dataDir: xd.dataDir, cgroups: false });
  for (const d of await driver.list()) await driver.destroy(d.id);
  removeDataDir(xd.dataDir);
}, 60_000);

describe('an instance-scoped token (the notice board)', () => {
  it('is what the service got: scoped to its own instance, which it may read', async () => {
    expect(service).toMatchObject({ namespace: 'default', instance: 'board-1', api: xd.url });
    expect(service.token).toMatch(/^[0-9a-f]{64}$/);
    expect(service.token).not.toBe(xd.token);
    // A file only the domain's own (unprivileged) uid can read, and not in its environment.
    expect(service).toMatchObject({ tokenFile: '/run/xenos/token', tokenMode: '400', envToken: null });
    expect(service.tokenOwner).toBe(service.uid);
    expect(service.uid).not.toBe(0);
    const own = await asService('GET', `${INSTANCES}/board-1`);
    expect(own.status).toBe(200);
    expect(own.body!.metadata.name).toBe('board-1');
    expect((await asService('GET', `${NS}/servicetemplates/board`)).status).toBe(403);
  });

  it('registers endpoints and reports ServiceHealthy, which the controller counts in Ready', async () => {
    const add = await asService(
      'PATCH',
      `${INSTANCES}/board-1/status`,
      [
        { op: 'add', path: '/status/endpoints/-', value: registered('admin', 9999) },
        { op: 'add', path: '/status/conditions/-', value: serviceHealthy('False', 'DatabaseDown') },
      ],
      JSON_PATCH,
    );
    expect(add.status, JSON.stringify(add.body)).toBe(200);
    expect(add.body!.status.endpoints.map((e: Obj) => `${e.name}:${e.source}`)).toEqual([
      'http:template',
      'admin:registered',
    ]);
    await waitForObject(
      xd,
      INSTANCES,
      'board-1',
      (o) => o.status.conditions.some((c: Obj) => c.type === 'Ready' && c.reason === 'DatabaseDown'),
      { what: 'Ready False from ServiceHealthy' },
    );

    // PUT of the whole status, changing only its own entries: a second endpoint, healthy again.
    const cur = await asService('GET', `${INSTANCES}/board-1/status`);
    const status = structuredClone(cur.body!.status);
    status.endpoints.push(registered('metrics', 9100));
    status.conditions = status.conditions.map((c: Obj) =>
      c.type === 'ServiceHealthy' ? serviceHealthy('True', 'AllGood') : c,
    );
    const put = await asService('PUT', `${INSTANCES}/board-1/status`, { ...cur.body, status });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const back = await waitForObject(
      xd,
      INSTANCES,
      'board-1',
      (o) => o.status.conditions.some((c: Obj) => c.type === 'Ready' && c.status === 'True'),
      { what: 'Ready again' },
    );
    expect(back.status.endpoints.map((e: Obj) => e.name)).toEqual(['http', 'admin', 'metrics']);

    // A merge patch replaces the whole list: with the template's endpoint kept as it is, it may.
    const endpoints = back.status.endpoints.filter((e: Obj) => e.name !== 'metrics');
    const merged = await asService(
      'PATCH',
      `${INSTANCES}/board-1/status`,
      { status: { endpoints } },
      MERGE_PATCH,
    );
    expect(merged.status, JSON.stringify(merged.body)).toBe(200);
    expect(merged.body!.status.endpoints.map((e: Obj) => e.name)).toEqual(['http', 'admin']);
  });

  it('may change nothing else in the status: 403 naming the fields, and nothing is written', async () => {
    const before = await asAdmin(`${INSTANCES}/board-1`);
    const ready = before.status.conditions.findIndex((c: Obj) => c.type === 'Ready');
    const http = before.status.endpoints.findIndex((e: Obj) => e.name === 'http');
    const attempts: { body: unknown; headers: Record<string, string>; field: string }[] = [
      { body: { status: { phase: 'Hacked' } }, headers: MERGE_PATCH, field: 'status.phase' },
      { body: { status: { restarts: 0, host: 'elsewhere' } }, headers: MERGE_PATCH, field: 'status.host' },
      {
        body: [{ op: 'replace', path: `/status/conditions/${ready}/status`, value: 'False' }],
        headers: JSON_PATCH,
        field: 'status.conditions[type=Ready]',
      },
      {
        body: [{ op: 'remove', path: `/status/endpoints/${http}` }],
        headers: JSON_PATCH,
        field: 'status.endpoints[name=http]',
      },
      {
        // Registered endpoints only: one claiming to come from the template is the host's to write.
        body: [
          { op: 'add', path: '/status/endpoints/-', value: { ...registered('fake', 1), source: 'template' } },
        ],
        headers: JSON_PATCH,
        field: 'status.endpoints[name=fake]',
      },
      {
        // A merge patch that drops the template's endpoint along with its own.
        body: { status: { endpoints: [registered('admin', 9999)] } },
        headers: MERGE_PATCH,
        field: 'status.endpoints[name=http]',
      },
    ];
    for (const a of attempts) {
      const r = await asService('PATCH', `${INSTANCES}/board-1/status`, a.body, a.headers);
      expect(r.status, JSON.stringify(a.body)).toBe(403);
      expect(r.body).toMatchObject({ kind: 'Status', reason: 'Forbidden', code: 403 });
      expect(r.body!.message).toContain(a.field);
      expect(r.body!.message).toContain(
        'may change only the status.endpoints entries with source "registered" and the ServiceHealthy condition',
      );
    }
    const put = await asService('PUT', `${INSTANCES}/board-1/status`, {
      ...before,
      status: { ...before.status, phase: 'Hacked' },
    });
    expect(put.status).toBe(403);
    expect(put.body!.message).toContain('status.phase');

    const after = await asAdmin(`${INSTANCES}/board-1`);
    expect(after.status.phase).toBe(before.status.phase);
    expect(after.status.host).toBe('test-host');
    expect(after.status.endpoints).toEqual(before.status.endpoints);
    expect(after.status.conditions.find((c: Obj) => c.type === 'Ready').status).toBe('True');

    // The main resource stays the admin's.
    const spec = await asService(
      'PATCH',
      `${INSTANCES}/board-1`,
      { spec: { runStrategy: 'Halted' } },
      MERGE_PATCH,
    );
    expect(spec.status).toBe(403);
  });

  it('answers a write against an old version with 409, not 403', async () => {
    const old = await asService('GET', `${INSTANCES}/board-1/status`);
    const bump = await asService(
      'PATCH',
      `${INSTANCES}/board-1/status`,
      [{ op: 'add', path: '/status/endpoints/-', value: registered('late', 7000) }],
      JSON_PATCH,
    );
    expect(bump.status).toBe(200);
    // The old version lacks "late": against the current one that looks like a change, but it is a conflict.
    const stale = await asService('PUT', `${INSTANCES}/board-1/status`, old.body);
    expect(stale.status).toBe(409);
    expect(stale.body!.reason).toBe('Conflict');
  });
});
