// Property tests of the API server over HTTP (in process, real store): any body — mutated example
// manifests, hostile tokens, random JSON — sent to any verb and content type, by the admin or by an
// instance-scoped token, is answered with a Kubernetes Status 4xx or a success, never a 5xx; the server
// keeps serving; Object.prototype never changes. Server-side apply of the same configuration twice is
// the same as once (the second changes nothing, not even the resourceVersion).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUZZ_TEST_TIMEOUT_MS, fuzz, jsonArb, prototypeSnapshot } from '../fuzz.ts';
import { type InProcessApi, startInProcessApi } from './in-process-api.ts';

const NS = '/apis/xenos.io/v1alpha1/namespaces/default';
const TYPES = [
  'application/json',
  'application/yaml',
  'application/merge-patch+json',
  'application/json-patch+json',
  'application/apply-patch+yaml',
  'text/plain',
];
const EXAMPLE = readFileSync(join(import.meta.dirname, '../../manifests/web/instance.yaml'), 'utf8');
const PIECES = [
  '',
  '__proto__: {polluted: 1}',
  '"constructor": {}',
  '&a [*a]',
  '<<: {prototype: 1}',
  '{',
  '- ',
  ': ',
  '\n',
  '[',
  '1e400',
  '"\\u005f_proto__"',
];

let api: InProcessApi;
let service: string;

beforeAll(async () => {
  api = await startInProcessApi({ eventRateLimit: { burst: 1_000_000, perSecond: 1000 } });
  service = api.instanceToken('web');
  const created = await api.call(
    api.admin,
    'POST',
    `${NS}/serviceinstances`,
    EXAMPLE.replace(/name: web-1/, 'name: web'),
    'application/yaml',
  );
  expect(created.status, JSON.stringify(created.body)).toBe(201);
});

afterAll(() => api?.stop());

const bodyArb = fc.oneof(
  fc.tuple(fc.nat(), fc.constantFrom(...PIECES)).map(([at, piece]) => {
    const i = at % (EXAMPLE.length + 1);
    return EXAMPLE.slice(0, i) + piece + EXAMPLE.slice(i);
  }),
  jsonArb(4).map((v) => JSON.stringify(v)),
  jsonArb(4).map((v) => JSON.stringify([{ op: 'add', path: '/spec/parameters/x', value: v }])),
  fc.array(fc.constantFrom(...PIECES), { maxLength: 10 }).map((p) => p.join('\n')),
);
const targetArb = fc.constantFrom(
  ['POST', `${NS}/serviceinstances`],
  ['PUT', `${NS}/serviceinstances/web`],
  ['PATCH', `${NS}/serviceinstances/web`],
  ['PATCH', `${NS}/serviceinstances/web/status`],
  ['PUT', `${NS}/serviceinstances/web/status`],
  ['DELETE', `${NS}/serviceinstances/nothing-here`],
  ['POST', '/api/v1/namespaces/default/events'],
  ['PATCH', `${NS}/servicetemplates/web`],
);

describe('API server property', () => {
  it(
    'answers any body on any verb with a Status 4xx or a success, never a 5xx, and keeps serving',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          bodyArb,
          targetArb,
          fc.constantFrom(...TYPES),
          fc.boolean(),
          async (body, [method, path], type, asService) => {
            const proto = prototypeSnapshot();
            const r = await api.call(asService ? service : api.admin, method, path, body, type);
            expect(r.status, `${method} ${path} ${type}: ${JSON.stringify(r.body)}`).toBeLessThan(500);
            if (r.status >= 400) {
              expect(r.body).toMatchObject({ kind: 'Status', status: 'Failure', code: r.status });
              expect(typeof r.body.message).toBe('string');
            }
            expect(prototypeSnapshot()).toBe(proto);
          },
        ),
        fuzz(200),
      );
      expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'server-side apply of the same configuration twice changes nothing the second time',
    async () => {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), fc.string({ maxLength: 20 }), {
            maxKeys: 5,
            noNullPrototype: true,
          }),
          async (parameters) => {
            const name = `apply-${n++}`;
            const config = dump({
              apiVersion: 'xenos.io/v1alpha1',
              kind: 'ServiceInstance',
              metadata: { name, labels: { app: 'web' } },
              spec: { templateRef: { name: 'web' }, parameters },
            });
            const path = `${NS}/serviceinstances/${name}?fieldManager=fuzz`;
            const first = await api.call(api.admin, 'PATCH', path, config, 'application/apply-patch+yaml');
            expect(first.status, JSON.stringify(first.body)).toBe(201);
            const second = await api.call(api.admin, 'PATCH', path, config, 'application/apply-patch+yaml');
            expect(second.status).toBe(200);
            expect(second.body).toEqual(first.body);
          },
        ),
        fuzz(50),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );
});
