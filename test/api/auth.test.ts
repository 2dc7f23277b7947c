// Tokens and permissions: the admin token survives a reload of the token file, unknown tokens are
// refused, and an instance-scoped principal may only read its instance and write its status.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_GROUP, authorize, newToken, type Principal, TokenAuthenticator } from '../../src/api/auth.ts';

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
});
