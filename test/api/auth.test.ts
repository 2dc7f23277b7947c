// Tokens and permissions: the admin token survives a reload of the token file, unknown tokens are
// refused, and an instance-scoped principal may only read its instance and write its own part of the
// status (registered endpoints, ServiceHealthy); test/api/notice-board.test.ts checks it over HTTP.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ADMIN_GROUP,
  authorize,
  newToken,
  type Principal,
  scopedStatusChange,
  TokenAuthenticator,
} from '../../src/api/auth.ts';
import type { ServiceInstanceStatus } from '../../src/model/service-instance.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('tokens', () => {
  it('creates the admin token once and recognises it after a reload', () => {
    const dir = mkdtempSync(join(tmpdir(), 'auth-'));
    dirs.push(dir);
    const a = new TokenAuthenticator({ dataDir: dir });
    a.ensureAdminToken(dir);
    const token = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    const b = new TokenAuthenticator({ dataDir: dir });
    b.ensureAdminToken(dir);
    expect(readFileSync(join(dir, 'admin.token'), 'utf8').trim()).toBe(token);
    expect(b.authenticate(`Bearer ${token}`)?.groups).toContain(ADMIN_GROUP);
    expect(b.authenticate(`Bearer ${newToken()}`)).toBeUndefined();
    expect(b.authenticate(undefined)).toBeUndefined();
    const scoped = newToken();
    b.add(scoped, {
      name: 'instance:default/web',
      groups: [],
      scope: { namespace: 'default', instance: 'web' },
    });
    expect(new TokenAuthenticator({ dataDir: dir }).authenticateToken(scoped)?.scope?.instance).toBe('web');
    b.revoke('instance:default/web');
    expect(b.authenticateToken(scoped)).toBeUndefined();
  });
});

describe('authorize', () => {
  const admin: Principal = { name: 'admin', groups: [ADMIN_GROUP] };
  const svc: Principal = { name: 'svc', groups: [], scope: { namespace: 'default', instance: 'web' } };
  const si = (name: string, extra: object = {}) => ({
    group: 'xenos.io',
    resource: 'serviceinstances',
    namespace: 'default',
    name,
    ...extra,
  });

  it('lets the admin do everything', () => {
    expect(authorize(admin, 'delete', { group: 'xenos.io', resource: 'hosts', name: 'h1' })).toBe(true);
  });

  it('limits an instance token to its own instance', () => {
    expect(authorize(svc, 'get', si('web'))).toBe(true);
    expect(authorize(svc, 'watch', si('web'))).toBe(true);
    expect(authorize(svc, 'patch', si('web', { subresource: 'status' }))).toBe(true);
    expect(authorize(svc, 'patch', si('web'))).toBe(false);
    expect(authorize(svc, 'delete', si('web'))).toBe(false);
    expect(authorize(svc, 'get', si('other'))).toBe(false);
    expect(authorize(svc, 'get', { ...si('web'), namespace: 'prod' })).toBe(false);
    expect(
      authorize(svc, 'list', { group: 'xenos.io', resource: 'serviceinstances', namespace: 'default' }),
    ).toBe(false);
    expect(authorize(svc, 'create', { group: '', resource: 'events', namespace: 'default' })).toBe(true);
  });

  it('lets an instance token discover services in its own namespace only', () => {
    const discover = (namespace: string) => ({ group: 'xenos.io', resource: 'discover', namespace });
    expect(authorize(svc, 'get', discover('default'))).toBe(true);
    expect(authorize(svc, 'get', discover('prod'))).toBe(false);
    expect(authorize(svc, 'create', discover('default'))).toBe(false);
  });
});

describe('scopedStatusChange', () => {
  const cond = (type: string, status: 'True' | 'False' = 'True') => ({
    type,
    status,
    reason: 'R',
    message: '',
    lastTransitionTime: '2026-01-01T00:00:00Z',
  });
  const ep = (name: string, source?: 'template' | 'registered', port = 80) => ({
    name,
    address: '127.0.0.1',
    port,
    protocol: 'TCP' as const,
    ...(source ? { source } : {}),
  });
  const base: ServiceInstanceStatus = {
    phase: 'Running',
    host: 'h1',
    observedGeneration: 2,
    endpoints: [ep('http', 'template'), ep('admin', 'registered', 9000)],
    conditions: [cond('Ready'), cond('ServiceHealthy')],
  };
  const change = (f: (s: ServiceInstanceStatus) => void) => {
    const next = structuredClone(base);
    f(next);
    return scopedStatusChange(base, next);
  };

  it.each([
    ['nothing', () => {}],
    ['a registered endpoint added', (s) => s.endpoints!.push(ep('metrics', 'registered', 9100))],
    ['a registered endpoint changed', (s) => (s.endpoints![1].port = 9001)],
    ['a registered endpoint removed', (s) => s.endpoints!.splice(1, 1)],
    ['the endpoints reordered', (s) => s.endpoints!.reverse()],
    ['ServiceHealthy changed', (s) => (s.conditions![1] = cond('ServiceHealthy', 'False'))],
    ['ServiceHealthy removed', (s) => s.conditions!.splice(1, 1)],
  ] as [string, (s: ServiceInstanceStatus) => void][])('allows %s', (_what, f) => {
    expect(change(f)).toEqual([]);
  });

  it.each([
    ['the phase', (s) => (s.phase = 'Failed'), ['status.phase']],
    ['a new field', (s) => (s.restarts = 3), ['status.restarts']],
    ['a field removed', (s) => delete s.host, ['status.host']],
    ['a template endpoint', (s) => (s.endpoints![0].port = 81), ['status.endpoints[name=http]']],
    ['a template endpoint removed', (s) => s.endpoints!.splice(0, 1), ['status.endpoints[name=http]']],
    ['an endpoint without source', (s) => s.endpoints!.push(ep('x')), ['status.endpoints[name=x]']],
    [
      'a registered endpoint turned template',
      (s) => (s.endpoints![1].source = 'template'),
      ['status.endpoints[name=admin]'],
    ],
    [
      'the Ready condition',
      (s) => (s.conditions![0] = cond('Ready', 'False')),
      ['status.conditions[type=Ready]'],
    ],
    ['a new condition', (s) => s.conditions!.push(cond('Healthy')), ['status.conditions[type=Healthy]']],
    [
      'all of the status',
      (s) => Object.assign(s, { phase: 'X', endpoints: [], conditions: [] }),
      ['status.phase', 'status.endpoints[name=http]', 'status.conditions[type=Ready]'],
    ],
  ] as [string, (s: ServiceInstanceStatus) => void, string[]][])('refuses %s', (_what, f, fields) => {
    expect(change(f)).toEqual(fields);
  });

  it('compares against no status at all', () => {
    expect(scopedStatusChange(undefined, { endpoints: [ep('a', 'registered')] })).toEqual([]);
    expect(scopedStatusChange(undefined, { phase: 'Running' })).toEqual(['status.phase']);
  });
});
