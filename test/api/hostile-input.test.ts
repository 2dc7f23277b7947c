// Hostile input against the real API server over HTTP (in this process, with the real SQLite store and
// token authenticator): bodies past the limits (alias bombs, nesting, copy amplification, objects past
// MAX_OBJECT_BYTES) are refused and store nothing; Events are shape-checked, size-capped and
// rate-limited per principal with 429 + Retry-After; an instance token's patch is checked before it is
// applied; a principal's open watches are capped. Prototype pollution: prototype-pollution.test.ts; the
// daemon side (--event-ttl, a real xenosd): test/daemon/event-ttl.test.ts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_OBJECT_BYTES } from '../../src/store/limits.ts';
import { aliasBomb, copyAmplification } from './hostile-bodies.ts';
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
let flood: string;

type Obj = Record<string, any>;

const call = (token: string, method: string, path: string, body?: unknown, type = CT.json) =>
  api.call(token, method, path, body, type);

beforeAll(async () => {
  api = await startInProcessApi({ eventRateLimit: { burst: 20, perSecond: 0.2 } });
  admin = api.admin;
  service = api.instanceToken('web');
  flood = api.instanceToken('flood');
  const web = await call(admin, 'POST', SI, {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name: 'web' },
    spec: { templateRef: { name: 'tpl' } },
  });
  expect(web.status).toBe(201);
  expect((await call(admin, 'POST', SD, deployment('target'))).status).toBe(201);
});

afterAll(() => api?.stop());

describe('bodies past the limits', () => {
  it('refuses a 1 KiB YAML alias bomb with 413 and its position, storing nothing', async () => {
    const r = await call(admin, 'POST', SD, aliasBomb(9), CT.yaml);
    expect(r.status).toBe(413);
    expect(r.body.reason).toBe('RequestEntityTooLarge');
    expect(r.body.message).toMatch(/at line \d+, column \d+: with its aliases expanded/);
  });

  it('refuses nesting past 100 levels in a create, a merge patch and a JSON patch', async () => {
    const deep = (n: number): unknown => (n === 0 ? 'x' : { d: deep(n - 1) });
    const create = await call(admin, 'POST', SD, deployment('deep', { spec: deep(120) }));
    expect(create.status).toBe(400);
    expect(create.body.message).toMatch(/at line 1, column \d+: spec(\.d)+: nested deeper than 100 levels/);
    const mergeDeep = await call(admin, 'PATCH', `${SD}/target`, { spec: deep(120) }, CT.merge);
    expect(mergeDeep.status).toBe(400);
    // A pointer 60 levels down and a 60-level value: each within the limit, together past it.
    const start = await call(
      admin,
      'PATCH',
      `${SD}/target`,
      [{ op: 'add', path: '/metadata/annotations', value: {} }],
      CT.jsonPatch,
    );
    expect(start.status).toBe(200);
    const path = `/spec/template/${Array(60).fill('d').join('/')}`;
    const patch = await call(
      admin,
      'PATCH',
      `${SD}/target`,
      [{ op: 'add', path, value: deep(50) }],
      CT.jsonPatch,
    );
    expect(patch.status).toBe(400);
    expect(patch.body.message).toContain('the value would be nested deeper than 100 levels');
  });

  it('refuses JSON patch copy amplification and too many operations', async () => {
    const doubling = [
      { op: 'add', path: '/metadata/annotations', value: {} },
      ...copyAmplification('/metadata/annotations/a', 'x'.repeat(50_000), 40),
    ];
    const amp = await call(admin, 'PATCH', `${SD}/target`, doubling, CT.jsonPatch);
    expect(amp.status).toBe(400);
    expect(amp.body.message).toMatch(
      /operation \d+ .*copy operations would duplicate more than 1572864 bytes/,
    );
    const many = Array.from({ length: 10_001 }, () => ({
      op: 'test',
      path: '/kind',
      value: 'ServiceDeployment',
    }));
    const tooMany = await call(admin, 'PATCH', `${SD}/target`, many, CT.jsonPatch);
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.message).toContain('at most 10000');
  });

  it('refuses an object over MAX_OBJECT_BYTES with 413 naming its size and the limit, dry run or not', async () => {
    const parameters = Object.fromEntries(
      Array.from({ length: 30 }, (_, i) => [`p${i}`, 'v'.repeat(60_000)]),
    );
    const big = deployment('big', {
      spec: { template: { spec: { templateRef: { name: 'tpl' }, parameters } } },
    });
    for (const query of ['', '?dryRun=All']) {
      const r = await call(admin, 'POST', SD + query, big);
      expect(r.status).toBe(413);
      expect(r.body.message).toMatch(
        new RegExp(
          `"big" in namespace "default" would be \\d+ bytes stored, over the limit of ${MAX_OBJECT_BYTES} bytes`,
        ),
      );
    }
    expect((await call(admin, 'GET', `${SD}/big`)).status).toBe(404);
    // Grown past the limit by a patch: the same answer, and the object stays as it was.
    const grow = await call(admin, 'PATCH', `${SD}/target`, { spec: big.spec }, CT.merge);
    expect(grow.status).toBe(413);
    expect((await call(admin, 'GET', `${SD}/target`)).body.spec.template.spec.parameters).toBeUndefined();
  });
});

describe('Events', () => {
  it('takes a core v1 Event and refuses a structured, long or oversized one with 422 naming the field', async () => {
    expect((await call(service, 'POST', EVENTS, event('ok-1'))).status).toBe(201);
    const cases: [Obj, RegExp][] = [
      [event('bad-1', { message: { lol: ['a', 'b'] } }), /message: must be a string; got a mapping/],
      [event('bad-2', { message: 'm'.repeat(2000) }), /message: must be at most 1024 bytes; got 2000/],
      [
        event('bad-3', { related: { kind: 'X', name: 'y'.repeat(20_000) } }),
        /an Event may be at most 16384 bytes/,
      ],
      [event('bad-4', { payload: 'x' }), /payload: unknown field "payload"/],
      [event('bad-5', { involvedObject: { kind: 'ServiceInstance' } }), /involvedObject: Required value/],
    ];
    for (const [body, says] of cases) {
      const r = await call(admin, 'POST', EVENTS, body);
      expect(r.status, JSON.stringify(r.body)).toBe(422);
      expect(r.body.message).toMatch(says);
    }
    // The reported 440-byte bomb, as an Event's message: refused before it is expanded.
    const bomb = `metadata: {name: bomb}\ninvolvedObject: {kind: ServiceInstance, name: web}\nmessage:\n${aliasBomb(
      9,
    )
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n')}`;
    expect((await call(admin, 'POST', EVENTS, bomb, CT.yaml)).status).toBe(413);
    const listed = await call(admin, 'GET', EVENTS);
    expect(listed.body.items.map((e: Obj) => e.metadata.name)).toEqual(['ok-1']);
  });

  it('rate-limits Event creates per principal with 429 and Retry-After, before reading the body', async () => {
    const codes: number[] = [];
    let limited: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 23; i++) {
      const r = await call(flood, 'POST', EVENTS, event(`flood-${i}`));
      codes.push(r.status);
      if (r.status === 429) limited ??= r;
    }
    expect(codes.slice(0, 20)).toEqual(Array(20).fill(201));
    expect(codes.slice(20)).toEqual([429, 429, 429]);
    expect(limited!.body).toMatchObject({ reason: 'TooManyRequests', code: 429 });
    expect(limited!.body.message).toContain(
      'User "instance:default/flood" is creating events faster than the limit',
    );
    const retry = Number(limited!.headers.get('retry-after'));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(limited!.body.details.retryAfterSeconds).toBe(retry);
    // Refused before the body is read: a 3 MiB body gets the same 429, not a 413.
    const huge = await call(flood, 'POST', EVENTS, 'x'.repeat(3 * 1024 * 1024 + 1));
    expect(huge.status).toBe(429);
    // Another principal has its own bucket.
    expect((await call(admin, 'POST', EVENTS, event('admin-1'))).status).toBe(201);
  });
});

describe('requests past the limits', () => {
  it('gives an instance-scoped token 128 KiB of body, the admin 3 MiB', async () => {
    const big = { status: { endpoints: [{ name: 'x', address: 'a'.repeat(200 * 1024) }] } };
    const r = await call(service, 'PATCH', `${SI}/web/status`, big, CT.merge);
    expect(r.status).toBe(413);
    expect(r.body.message).toBe(
      'the request body is larger than the limit of 131072 bytes for an instance-scoped token; send a patch of only the status entries that change',
    );
    expect(
      (
        await call(
          admin,
          'PATCH',
          `${SD}/target`,
          { metadata: { annotations: { a: 'x'.repeat(200 * 1024) } } },
          CT.merge,
        )
      ).status,
    ).toBe(200);
  });

  it('answers a malformed %-escape in the path with 400, not 500', async () => {
    const r = await call(admin, 'GET', '/apis/xenos.io/v1alpha1/namespaces/%E0%A4%A/servicedeployments');
    expect(r.status).toBe(400);
    expect(r.body.message).toContain('malformed %-escape in "%E0%A4%A"');
  });
});

describe('an instance-scoped token is checked before its patch is applied', () => {
  it('refuses a status patch reaching outside its endpoints and conditions with 403, naming the fields', async () => {
    const merge = await call(
      service,
      'PATCH',
      `${SI}/web/status`,
      { status: { phase: 'Hacked', endpoints: [] }, spec: {} },
      CT.merge,
    );
    expect(merge.status).toBe(403);
    expect(merge.body.message).toContain('this request changes status.phase, spec');
    const json = await call(
      service,
      'PATCH',
      `${SI}/web/status`,
      [{ op: 'replace', path: '/status/phase', value: 'x' }],
      CT.jsonPatch,
    );
    expect(json.status).toBe(403);
    expect(json.body.message).toContain('this request changes /status/phase');
    const apply = await call(
      service,
      'PATCH',
      `${SI}/web/status`,
      'apiVersion: xenos.io/v1alpha1\nkind: ServiceInstance\nmetadata: {name: web}\nspec: {runStrategy: Halted}\n',
      CT.apply,
    );
    expect(apply.status).toBe(403);
    expect(apply.body.message).toContain('this request changes spec');
    expect((await call(admin, 'GET', `${SI}/web`)).body.spec.runStrategy).not.toBe('Halted');
  });
});

describe('watches', () => {
  it('lets one principal hold a bounded number of watches open: 429 past it, room again once one ends', async () => {
    const small = await startInProcessApi({ maxWatchesPerPrincipal: 3 });
    const token = small.instanceToken('web');
    const open: AbortController[] = [];
    try {
      const watch = (who: string) => {
        const ctl = new AbortController();
        open.push(ctl);
        return fetch(
          `${small.url}${SI}?watch=true&fieldSelector=metadata.name%3Dweb&labelSelector=${encodeURIComponent(
            Array.from({ length: 200 }, (_, i) => `k${i}!=v`).join(','),
          )}`,
          { headers: { Authorization: `Bearer ${who}` }, signal: ctl.signal },
        );
      };
      for (let i = 0; i < 3; i++) expect((await watch(token)).status).toBe(200);
      const refused = await watch(token);
      expect(refused.status).toBe(429);
      expect(((await refused.json()) as Obj).message).toContain(
        'User "instance:default/web" has 3 watches open',
      );
      expect(refused.headers.get('retry-after')).toBe('1');
      // Another principal is not held to this one's count.
      expect((await watch(small.admin)).status).toBe(200);
      open[0].abort();
      await expect.poll(async () => (await watch(token)).status).toBe(200);
    } finally {
      for (const c of open) c.abort();
      await small.stop();
    }
  });
});
