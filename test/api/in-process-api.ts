// Test helper: the real API server (real SQLite store, real token authenticator, real HTTP on
// 127.0.0.1) in the test's own process, for tests that must look inside it (Object.prototype) or call it
// thousands of times. An admin token and instance-scoped tokens are issued; stop() closes everything.
// Also the paths, media types and objects those tests send. End-to-end tests of the daemon itself use
// test/daemon/xenosd-process.ts.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiResources } from '../../src/api/api-resources.ts';
import { newToken, TokenAuthenticator } from '../../src/api/auth.ts';
import { loadKinds } from '../../src/api/kinds.ts';
import { ApiServer, type ApiServerInit } from '../../src/api/server.ts';
import { Validator } from '../../src/api/validation.ts';
import { openStore, type SqliteStore } from '../../src/store/sqlite-store.ts';

export interface InProcessApi {
  url: string;
  store: SqliteStore;
  admin: string;
  /** An instance-scoped token for default/<instance>. */
  instanceToken(instance: string): string;
  call(token: string, method: string, path: string, body?: unknown, type?: string): Promise<ApiResponse>;
  stop(): Promise<void>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: Record<string, any>;
}

export async function startInProcessApi(init: ApiServerInit = {}): Promise<InProcessApi> {
  const dir = mkdtempSync(join(tmpdir(), 'xenos-api-'));
  const kinds = loadKinds();
  const resources = new ApiResources(kinds);
  const store = openStore({ path: join(dir, 'state.db'), namespaced: (k) => resources.namespaced(k) });
  const auth = new TokenAuthenticator({ dataDir: dir });
  auth.ensureAdminToken(dir);
  const server = new ApiServer(
    { store, resources, validator: new Validator(kinds), auth },
    { port: 0, ...init },
  );
  await server.start();
  return {
    url: server.url,
    store,
    admin: readFileSync(join(dir, 'admin.token'), 'utf8').trim(),
    instanceToken(instance) {
      const token = newToken();
      auth.add(token, {
        name: `instance:default/${instance}`,
        groups: [],
        scope: { namespace: 'default', instance },
      });
      return token;
    },
    async call(token, method, path, body, type = 'application/json') {
      const res = await fetch(server.url + path, {
        method,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': type },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
    },
    async stop() {
      await server.stop();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const NS = '/apis/xenos.io/v1alpha1/namespaces/default';
export const SI = `${NS}/serviceinstances`;
export const SD = `${NS}/servicedeployments`;
export const EVENTS = '/api/v1/namespaces/default/events';
/** The media types of the API. */
export const CT = {
  json: 'application/json',
  yaml: 'application/yaml',
  merge: 'application/merge-patch+json',
  jsonPatch: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
};

type Obj = Record<string, any>;

/** A ServiceDeployment no controller touches. */
export const deployment = (name: string, extra: Obj = {}) => ({
  apiVersion: 'xenos.io/v1alpha1',
  kind: 'ServiceDeployment',
  metadata: { name },
  spec: { template: { spec: { templateRef: { name: 'tpl' } } } },
  ...extra,
});

/** A core v1 Event about default/web. */
export const event = (name: string, extra: Obj = {}) => ({
  metadata: { name },
  involvedObject: { kind: 'ServiceInstance', name: 'web', namespace: 'default' },
  reason: 'Started',
  message: 'the service started',
  type: 'Normal',
  ...extra,
});

/** What Object.prototype holds: its own property names and what a fresh object inherits. */
