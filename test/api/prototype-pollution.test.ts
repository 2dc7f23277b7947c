// Prototype pollution against the real API server over HTTP (in this process, with the real SQLite store
// and token authenticator, so that the test can look at Object.prototype itself): attempts in every body
// format and patch type, spelled every way (pointers, \u escapes, YAML merge keys, patch values,
// DeleteOptions, Events), from the admin and from an instance-scoped token, are refused with a 4xx naming
// the field or operation; Object.prototype stays as it was and an admin write still works after each.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prototypeSnapshot } from '../fuzz.ts';
import {
  CT,
  deployment,
  EVENTS,
  event,
  type InProcessApi,
  SD,
  SI,
  startInProcessApi,
} from './in-process-api.ts';

let api: InProcessApi;
let admin: string;
let service: string;

beforeAll(async () => {
  api = await startInProcessApi();
  admin = api.admin;
  service = api.instanceToken('web');
  const web = await api.call(admin, 'POST', SI, {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name: 'web' },
    spec: { templateRef: { name: 'tpl' } },
  });
  expect(web.status).toBe(201);
  expect((await api.call(admin, 'POST', SD, deployment('target'))).status).toBe(201);
});

afterAll(() => api?.stop());

describe('prototype pollution', () => {
  // Bodies are written as text, so that escapes reach the server as an attacker would send them.
  const attacks: {
    what: string;
    token: () => string;
    method: string;
    path: string;
    type: string;
    body: string;
    code: number;
    says: RegExp;
  }[] = [
    {
      what: 'instance token, JSON patch of its status through /__proto__ (the original report)',
      token: () => service,
      method: 'PATCH',
      path: `${SI}/web/status`,
      type: CT.jsonPatch,
      body: '[{"op": "add", "path": "/__proto__/isAdmin", "value": true}]',
      code: 403,
      says: /may change only the status\.endpoints entries.*this request changes \/__proto__\/isAdmin/,
    },
    {
      what: 'instance token, a prototype key inside the part of the status it may write',
      token: () => service,
      method: 'PATCH',
      path: `${SI}/web/status`,
      type: CT.jsonPatch,
      body: '[{"op": "add", "path": "/status/endpoints/__proto__", "value": {"polluted": 1}}]',
      code: 400,
      says: /"\/status\/endpoints\/__proto__"\): the key "__proto__" is not allowed/,
    },
    {
      what: 'instance token, merge patch of its status with a __proto__ key',
      token: () => service,
      method: 'PATCH',
      path: `${SI}/web/status`,
      type: CT.merge,
      body: '{"status": {"__proto__": {"polluted": 1}}}',
      code: 400,
      says: /status\.__proto__: the key "__proto__" is not allowed/,
    },
    {
      what: 'admin, JSON patch through /__proto__',
      token: () => admin,
      method: 'PATCH',
      path: `${SD}/target`,
      type: CT.jsonPatch,
      body: '[{"op": "add", "path": "/__proto__/polluted", "value": "yes"}]',
      code: 400,
      says: /operation 0 \("\/__proto__\/polluted"\): the key "__proto__" is not allowed/,
    },
    {
      what: 'admin, JSON patch through /constructor/prototype',
      token: () => admin,
      method: 'PATCH',
      path: `${SD}/target`,
      type: CT.jsonPatch,
      body: '[{"op": "add", "path": "/constructor/prototype/polluted", "value": "yes"}]',
      code: 400,
      says: /the key "constructor" is not allowed/,
    },
    {
      what: 'admin, JSON patch whose pointer is \\u-escaped',
      token: () => admin,
      method: 'PATCH',
      path: `${SD}/target`,
      type: CT.jsonPatch,
      body: '[{"op": "copy", "from": "/spec", "path": "/\\u005f\\u005fproto\\u005f\\u005f"}]',
      code: 400,
      says: /the key "__proto__" is not allowed/,
    },
    {
      what: 'admin, JSON patch whose value carries a __proto__ key',
      token: () => admin,
      method: 'PATCH',
      path: `${SD}/target`,
      type: CT.jsonPatch,
      body: '[{"op": "add", "path": "/metadata/labels", "value": {"__proto__": {"polluted": "yes"}}}]',
      code: 400,
      says: /\[0\]\.value\.__proto__: the key "__proto__"/,
    },
    {
      what: 'admin, merge patch with a \\u-escaped __proto__ key',
      token: () => admin,
      method: 'PATCH',
      path: `${SD}/target`,
      type: CT.merge,
      body: '{"spec": {"\\u005f_proto__": {"polluted": "yes"}}}',
      code: 400,
      says: /spec\.__proto__: the key "__proto__" is not allowed/,
    },
    {
      what: 'admin, merge patch with a constructor label',
      token: () => admin,
      method: 'PATCH',
      path: `${SD}/target`,
      type: CT.merge,
      body: '{"metadata": {"labels": {"constructor": "x"}}}',
      code: 400,
      says: /metadata\.labels\.constructor/,
    },
    {
      what: 'admin, server-side apply (YAML) with __proto__',
      token: () => admin,
      method: 'PATCH',
      path: `${SD}/target`,
      type: CT.apply,
      body: 'apiVersion: xenos.io/v1alpha1\nkind: ServiceDeployment\nmetadata: {name: target}\n__proto__:\n  polluted: yes\n',
      code: 400,
      says: /at line 4, column 1: __proto__: the key "__proto__" is not allowed/,
    },
    {
      what: 'admin, create (JSON) with a prototype key deep in the spec',
      token: () => admin,
      method: 'POST',
      path: SD,
      type: CT.json,
      body: JSON.stringify(deployment('p1')).replace(
        '"templateRef"',
        '"prototype": {"polluted": 1}, "templateRef"',
      ),
      code: 400,
      says: /spec\.template\.spec\.prototype/,
    },
    {
      what: 'admin, create (YAML) with a merge key bringing in constructor',
      token: () => admin,
      method: 'POST',
      path: SD,
      type: CT.yaml,
      body: 'x: &x {constructor: {prototype: {polluted: 1}}}\nmetadata:\n  <<: *x\n  name: p2\n',
      code: 400,
      says: /x\.constructor: the key "constructor"/,
    },
    {
      what: 'admin, replace (PUT) with a __proto__ annotation',
      token: () => admin,
      method: 'PUT',
      path: `${SD}/target`,
      type: CT.json,
      body: JSON.stringify(deployment('target')).replace(
        '"metadata":{',
        '"metadata":{"annotations":{"__proto__":"x"},',
      ),
      code: 400,
      says: /metadata\.annotations\.__proto__/,
    },
    {
      what: 'admin, DeleteOptions with __proto__',
      token: () => admin,
      method: 'DELETE',
      path: `${SD}/target`,
      type: CT.json,
      body: '{"__proto__": {"dryRun": ["All"]}}',
      code: 400,
      says: /__proto__: the key "__proto__"/,
    },
    {
      what: 'instance token, an Event with a __proto__ key',
      token: () => service,
      method: 'POST',
      path: EVENTS,
      type: CT.json,
      body: JSON.stringify(event('proto-event')).replace(
        '"reason"',
        '"__proto__": {"polluted": 1}, "reason"',
      ),
      code: 400,
      says: /__proto__: the key "__proto__" is not allowed/,
    },
  ];

  it.each(attacks.map((a, i) => [a.what, i] as const))(
    'refuses %s; Object.prototype is untouched and the admin can still write',
    async (_what, i) => {
      const a = attacks[i];
      const before = prototypeSnapshot();
      const r = await api.call(a.token(), a.method, a.path, a.body, a.type);
      expect(r.status, JSON.stringify(r.body)).toBe(a.code);
      expect(r.body).toMatchObject({ kind: 'Status', status: 'Failure', code: a.code });
      expect(r.body.message).toMatch(a.says);
      expect(prototypeSnapshot()).toBe(before);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
      const write = await api.call(admin, 'POST', SD, deployment(`after-${i}`));
      expect(write.status, JSON.stringify(write.body)).toBe(201);
      const target = await api.call(admin, 'GET', `${SD}/target`);
      expect(target.status).toBe(200);
      expect(target.body.metadata.labels).toBeUndefined();
    },
  );
});
