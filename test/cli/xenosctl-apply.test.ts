// End-to-end: `xenosctl apply` and `xenosctl diff` as child processes against a real xenosd:
// created / unchanged / configured, fields removed from the file are removed, an invalid file
// applies nothing and is reported as file:line:col, dry runs, stdin, delete -f, diff exit codes.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { XenosClient } from '../../src/client/client.ts';
import { ApiStatusError, isNotFound } from '../../src/client/errors.ts';
import { LAST_APPLIED } from '../../src/client/three-way-patch.ts';
import type { ResourceType } from '../../src/model/api-resource.ts';
import { SERVICE_INSTANCE, SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import type { XObject } from '../../src/model/object.ts';
import { waitForObject } from '../daemon/wait-for-object.ts';
import { removeDataDir, startXenosd, type XenosdProcess } from '../daemon/xenosd-process.ts';
import { killAllCtl, xenosctl } from './run-xenosctl.ts';

let xenosd: XenosdProcess;
let client: XenosClient;
let env: Record<string, string>;
let dir: string;

beforeAll(async () => {
  xenosd = await startXenosd();
  client = new XenosClient({ server: xenosd.url, token: xenosd.token });
  env = { XENOS_SERVER: xenosd.url, XENOS_TOKEN: xenosd.token };
  dir = mkdtempSync(join(tmpdir(), 'xenosctl-apply-'));
});

afterEach(() => killAllCtl());

afterAll(async () => {
  client?.close();
  await xenosd?.stop();
  if (xenosd) removeDataDir(xenosd.dataDir);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function templateYaml(name: string, ns: string, extra = ''): string {
  return `apiVersion: xenos.io/v1alpha1
kind: ServiceTemplate
metadata:
  name: ${name}
  namespace: ${ns}
  labels:
    app: ${name}
spec:
  serviceType: ${name}
  image:
    path: /srv/images/${name}
  process:
    command: [sleep, "1000"]
${extra}`;
}

function instanceYaml(name: string, ns: string, params: Record<string, string>): string {
  const p = Object.entries(params)
    .map(([k, v]) => `    ${k}: "${v}"`)
    .join('\n');
  return `apiVersion: xenos.io/v1alpha1
kind: ServiceInstance
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  templateRef:
    name: web
  runStrategy: Manual
${p ? `  parameters:\n${p}\n` : ''}`;
}

function write(name: string, text: string): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

async function absent(rt: ResourceType, name: string, namespace: string): Promise<boolean> {
  try {
    await client.get(rt, name, { namespace });
    return false;
  } catch (err) {
    if (isNotFound(err)) return true;
    throw err;
  }
}

describe('apply', () => {
  it('creates, leaves unchanged, configures, and removes fields dropped from the file', async () => {
    const file = write(
      'a1/web.yaml',
      `${templateYaml('web', 'ap1')}---\n${instanceYaml('web-1', 'ap1', { greeting: 'hi', extra: 'x' })}`,
    );
    const first = await xenosctl(['apply', '-f', file], { env });
    // The image path is not on this machine: nothing is uploaded, the path is sent for the hosts to read.
    expect(first.stderr).toBe(
      `warning: ${file}:1: servicetemplate/web: spec.image.path /srv/images/web is not on this machine; it is sent as a path every host must have\n`,
    );
    expect(first).toMatchObject({
      code: 0,
      stdout: 'servicetemplate.xenos.io/web created\nserviceinstance.xenos.io/web-1 created\n',
    });
    const created = await client.get(SERVICE_INSTANCE, 'web-1', { namespace: 'ap1' });
    expect(created.spec?.parameters).toEqual({ greeting: 'hi', extra: 'x' });
    expect(created.metadata.annotations?.[LAST_APPLIED]).toBeTruthy();

    // The scheduler binds it (spec.host: a new generation) and the controller adds its finalizer and
    // writes status. None of that is in the file: applying it again must say unchanged and write nothing.
    const bound = await waitForObject(
      xenosd,
      '/apis/xenos.io/v1alpha1/namespaces/ap1/serviceinstances',
      'web-1',
      (o) => o.spec.host === 'test-host' && o.metadata.finalizers?.includes('xenos.io/domain'),
      { what: 'the binding to test-host and the domain finalizer' },
    );
    expect(bound.metadata.generation).toBe(2);
    const again = await xenosctl(['apply', '-f', file], { env });
    expect(again.stdout).toBe(
      'servicetemplate.xenos.io/web unchanged\nserviceinstance.xenos.io/web-1 unchanged\n',
    );
    // Only the controllers' status writes may have happened since (they move resourceVersion).
    const userVisible = (o: XObject) => ({
      ...o,
      status: undefined,
      metadata: { ...o.metadata, resourceVersion: undefined },
    });
    expect(userVisible(await client.get(SERVICE_INSTANCE, 'web-1', { namespace: 'ap1' }))).toEqual(
      userVisible(bound as XObject),
    );

    // Someone else labels the object; the file drops a parameter and changes another.
    await client.patch(
      SERVICE_INSTANCE,
      'web-1',
      { metadata: { labels: { owner: 'ops' } } },
      { namespace: 'ap1' },
    );
    write(
      'a1/web.yaml',
      `${templateYaml('web', 'ap1')}---\n${instanceYaml('web-1', 'ap1', { greeting: 'hello' })}`,
    );
    const changed = await xenosctl(['apply', '-f', join(dir, 'a1')], { env });
    expect(changed.stdout).toBe(
      'servicetemplate.xenos.io/web unchanged\nserviceinstance.xenos.io/web-1 configured\n',
    );
    const live = await client.get(SERVICE_INSTANCE, 'web-1', { namespace: 'ap1' });
    expect(live.spec?.parameters).toEqual({ greeting: 'hello' });
    expect(live.metadata.labels).toEqual({ owner: 'ops' });
    // What the server set and the file never had stays: the binding and the finalizer.
    expect(live.spec?.host).toBe('test-host');
    expect(live.metadata.finalizers).toEqual(['xenos.io/domain']);
    expect(live.metadata.generation).toBe(3);
  });

  it('applies nothing when any document is invalid, and locates every problem', async () => {
    const good = write('bad/a-good.yaml', templateYaml('fine', 'ap2'));
    const bad = write(
      'bad/b-bad.yaml',
      `${instanceYaml('ok-1', 'ap2', {})}---
apiVersion: xenos.io/v1alpha1
kind: ServiceInstance
metadata:
  name: broken
  namespace: ap2
spec:
  runStrategy: Sometimes
`,
    );
    const r = await xenosctl(['apply', '-f', good, '-f', bad], { env });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: \d+ problems? in the manifests; nothing was applied:\n/);
    const lines = readFileSync(bad, 'utf8').split('\n');
    const strategyLine = lines.indexOf('  runStrategy: Sometimes') + 1;
    const specLine = lines.lastIndexOf('spec:') + 1;
    const at = bad.replace(/[.]/g, '\\.');
    expect(r.stderr).toMatch(
      new RegExp(`^  ${at}:${strategyLine}:16: spec\\.runStrategy: must be one of .*"Sometimes"$`, 'm'),
    );
    expect(r.stderr).toMatch(
      new RegExp(`^  ${at}:${specLine}:\\d+: spec\\.templateRef: Required value`, 'm'),
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await absent(SERVICE_TEMPLATE, 'fine', 'ap2')).toBe(true);
    expect(await absent(SERVICE_INSTANCE, 'ok-1', 'ap2')).toBe(true);
  });

  it('dry runs change nothing; -f - reads stdin; -n sets the namespace of manifests without one', async () => {
    const yaml = templateYaml('dry', 'ap3');
    const client1 = await xenosctl(['apply', '-f', '-', '--dry-run=client'], { env, stdin: yaml });
    expect(client1).toMatchObject({ code: 0, stdout: 'servicetemplate.xenos.io/dry valid (dry run)\n' });
    const server = await xenosctl(['apply', '-f', '-', '--dry-run=server'], { env, stdin: yaml });
    expect(server).toMatchObject({
      code: 0,
      stdout: 'servicetemplate.xenos.io/dry created (server dry run)\n',
    });
    expect(await absent(SERVICE_TEMPLATE, 'dry', 'ap3')).toBe(true);

    const noNs = yaml.replace('  namespace: ap3\n', '');
    const r = await xenosctl(['apply', '-n', 'ap3b', '-f', '-'], { env, stdin: noNs });
    expect(r.stdout).toBe('servicetemplate.xenos.io/dry created\n');
    expect(await absent(SERVICE_TEMPLATE, 'dry', 'ap3b')).toBe(false);

    const clash = await xenosctl(['apply', '-n', 'other', '-f', '-'], { env, stdin: yaml });
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain(
      '<stdin>:1:1: metadata.namespace: "ap3" does not match --namespace "other"',
    );
  });

  it('turns a 422 from the server into a message with one line per field cause', async () => {
    // The CLI validates locally first; the client is sent an invalid object directly to see the
    // server's own answer mapped.
    const err = await client
      .create(
        SERVICE_INSTANCE,
        {
          apiVersion: 'xenos.io/v1alpha1',
          kind: 'ServiceInstance',
          metadata: { name: 'x' },
          spec: { runStrategy: 'Sometimes' },
        },
        { namespace: 'ap4' },
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ApiStatusError);
    const e = err as ApiStatusError;
    expect(e.code).toBe(422);
    expect(e.reason).toBe('Invalid');
    expect(e.message).toBe('ServiceInstance.xenos.io "x" is invalid:');
    expect(e.details).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^spec\.runStrategy: /),
        expect.stringMatching(/^spec\.templateRef: /),
      ]),
    );
  });
});

describe('apply --server-side', () => {
  it("applies as a field manager, refuses to take others' fields unless forced", async () => {
    const file = write('ss/web.yaml', instanceYaml('web-ss', 'ss1', { greeting: 'hi' }));
    const first = await xenosctl(['apply', '--server-side', '-f', file], { env });
    expect(first).toMatchObject({ code: 0, stdout: 'serviceinstance.xenos.io/web-ss serverside-applied\n' });
    const created = await client.get(SERVICE_INSTANCE, 'web-ss', { namespace: 'ss1' });
    expect(created.metadata.managedFields?.map((m) => [m.manager, m.operation])).toEqual([
      ['xenosctl', 'Apply'],
    ]);
    expect(created.metadata.annotations?.[LAST_APPLIED]).toBeUndefined();

    // Another manager owns greeting now, with another value.
    await client.patch(
      SERVICE_INSTANCE,
      'web-ss',
      { spec: { parameters: { greeting: 'hello' } } },
      {
        namespace: 'ss1',
        fieldManager: 'editor',
      },
    );
    const refused = await xenosctl(['apply', '--server-side', '-f', file], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'conflict with "editor" using xenos.io/v1alpha1: .spec.parameters.greeting',
    );
    const forced = await xenosctl(
      ['apply', '--server-side', '--force-conflicts', '--field-manager', 'ci', '-f', file],
      { env },
    );
    expect(forced.code, forced.stderr).toBe(0);
    const now = await client.get(SERVICE_INSTANCE, 'web-ss', { namespace: 'ss1' });
    expect(now.spec?.parameters).toEqual({ greeting: 'hi' });
    expect(now.metadata.managedFields?.map((m) => m.manager).sort()).toEqual(['ci', 'xenosctl']);

    const misused = await xenosctl(['apply', '--force-conflicts', '-f', file], { env });
    expect(misused.code).toBe(2);
    expect(misused.stderr).toContain('--force-conflicts only works with --server-side');
  });
});

describe('diff', () => {
  it('exits 0 without differences, 1 with a unified diff, 2 on errors', async () => {
    const file = write('d1/web.yaml', templateYaml('web', 'df1'));
    const before = await xenosctl(['diff', '-f', file], { env });
    expect(before.code).toBe(1);
    expect(before.stdout).toMatch(
      /^--- \/dev\/null\n\+\+\+ merged\/xenos\.io\.v1alpha1\.ServiceTemplate\.df1\.web\n@@ -0,0 \+1,\d+ @@\n/,
    );
    expect(await absent(SERVICE_TEMPLATE, 'web', 'df1')).toBe(true);

    expect((await xenosctl(['apply', '-f', file], { env })).code).toBe(0);
    const same = await xenosctl(['diff', '-f', file], { env });
    expect(same).toMatchObject({ code: 0, stdout: '' });

    write('d1/web.yaml', templateYaml('web', 'df1').replace('serviceType: web', 'serviceType: web2'));
    const changed = await xenosctl(['diff', '-f', file], { env });
    expect(changed.code).toBe(1);
    expect(changed.stdout).toContain('--- live/xenos.io.v1alpha1.ServiceTemplate.df1.web');
    expect(changed.stdout).toMatch(/^- {2}serviceType: web$/m);
    expect(changed.stdout).toMatch(/^\+ {2}serviceType: web2$/m);
    expect((await client.get(SERVICE_TEMPLATE, 'web', { namespace: 'df1' })).spec?.serviceType).toBe('web');

    const down = await xenosctl(['diff', '-f', file], { env: { XENOS_SERVER: 'http://127.0.0.1:9' } });
    expect(down.code).toBe(2);
    expect(down.stderr).toContain('cannot reach xenosd');
  });
});

describe('delete -f', () => {
  it('deletes what the files describe', async () => {
    const file = write(
      'del/web.yaml',
      `${templateYaml('web', 'dl1')}---\n${instanceYaml('web-1', 'dl1', {})}`,
    );
    expect((await xenosctl(['apply', '-f', file], { env })).code).toBe(0);
    const r = await xenosctl(['delete', '-f', file], { env });
    expect(r).toMatchObject({
      code: 0,
      stdout: 'servicetemplate.xenos.io "web" deleted\nserviceinstance.xenos.io "web-1" deleted\n',
    });
    expect((await client.list(SERVICE_TEMPLATE, { namespace: 'dl1' })).items as XObject[]).toEqual([]);
  });
});
