// End-to-end: xenosctl as a child process against a real xenosd (get, describe, wait, delete,
// kubeconfig, version, and the errors people see: no server, bad token, unknown kind).
// Objects are created through the CLI's own client; each test works in its own namespace.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { XenosClient } from '../../src/client/client.ts';
import { HOST, SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import type { XObject } from '../../src/model/object.ts';
import { waitForObject } from '../daemon/wait-for-object.ts';
import { removeDataDir, startXenosd, type XenosdProcess } from '../daemon/xenosd-process.ts';
import { killAllCtl, xenosctl, xenosctlUntil } from './run-xenosctl.ts';

let xenosd: XenosdProcess;
let client: XenosClient;
let env: Record<string, string>;

beforeAll(async () => {
  // Hosts this file creates (host/ghost-1) have no xenosd: a long host timeout keeps the Host controller
  // from marking them NotReady while a test still waits on the conditions it writes itself.
  xenosd = await startXenosd({ args: ['--host-timeout', '10m'] });
  client = new XenosClient({ server: xenosd.url, token: xenosd.token });
  env = { XENOS_SERVER: xenosd.url, XENOS_TOKEN: xenosd.token };
});

afterEach(() => killAllCtl());

afterAll(async () => {
  client?.close();
  await xenosd?.stop();
  if (xenosd) removeDataDir(xenosd.dataDir);
});

function template(
  name: string,
  namespace: string,
  labels?: Record<string, string>,
  imagePath = '/srv/images/web',
): XObject {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceTemplate',
    metadata: { name, namespace, ...(labels ? { labels } : {}) },
    spec: {
      serviceType: `svc-${name}`,
      image: { path: imagePath },
      process: { command: ['sleep', '1000'] },
    },
  };
}

function host(name: string): XObject {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'Host',
    metadata: { name },
    spec: { unschedulable: false },
  };
}

describe('get', () => {
  it('prints a table of the printer columns, by any name of the kind', async () => {
    await client.create(SERVICE_TEMPLATE, template('web', 'get1', { app: 'web' }), { namespace: 'get1' });
    await client.create(SERVICE_TEMPLATE, template('db', 'get1', { app: 'db' }), { namespace: 'get1' });
    for (const alias of [
      'servicetemplates',
      'servicetemplate',
      'st',
      'ServiceTemplate',
      'servicetemplates.xenos.io',
    ]) {
      const r = await xenosctl(['get', alias, '-n', 'get1'], { env });
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^NAME\s+TYPE\s+DIGEST\s+READY\s+AGE$/);
      expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
        ['db', 'svc-db'],
        ['web', 'svc-web'],
      ]);
      expect(lines[1]).toMatch(/\s\d+s$/);
    }
    const wide = await xenosctl(['get', 'st', '-n', 'get1', '-o', 'wide'], { env });
    expect(wide.stdout.split('\n')[0]).toMatch(/AGE\s+IMAGE\s+URL\s+SIZE/);
    expect(wide.stdout).toContain('/srv/images/web');
  });

  it('selects by label, prints yaml, json, name and jsonpath', async () => {
    await client.create(SERVICE_TEMPLATE, template('web', 'get2', { app: 'web' }), { namespace: 'get2' });
    await client.create(SERVICE_TEMPLATE, template('db', 'get2', { app: 'db' }), { namespace: 'get2' });
    const byLabel = await xenosctl(['get', 'st', '-n', 'get2', '-l', 'app=web', '-o', 'name'], { env });
    expect(byLabel).toMatchObject({ code: 0, stdout: 'servicetemplate.xenos.io/web\n' });

    const yaml = await xenosctl(['get', 'st', 'web', '-n', 'get2', '-o', 'yaml'], { env });
    expect(yaml.code).toBe(0);
    expect(yaml.stdout).toMatch(
      /^apiVersion: xenos\.io\/v1alpha1\nkind: ServiceTemplate\nmetadata:\n {2}name: web\n/,
    );
    expect(yaml.stdout).toMatch(/^ {2}uid: \S+$/m);

    const json = await xenosctl(['get', 'st', '-n', 'get2', '-o', 'json'], { env });
    const list = JSON.parse(json.stdout) as { kind: string; items: XObject[] };
    expect(list.kind).toBe('List');
    expect(list.items.map((i) => i.metadata.name).sort()).toEqual(['db', 'web']);

    const jp = await xenosctl(
      [
        'get',
        'st',
        '-n',
        'get2',
        '-o',
        'jsonpath={range .items[*]}{.metadata.name}={.spec.serviceType}{"\\n"}{end}',
      ],
      { env },
    );
    expect(jp.stdout.split('\n').filter(Boolean).sort()).toEqual(['db=svc-db', 'web=svc-web']);

    const mixed = await xenosctl(['get', 'st/web', 'st/db', '-n', 'get2', '-o', 'name'], { env });
    expect(mixed.stdout).toBe('servicetemplate.xenos.io/web\nservicetemplate.xenos.io/db\n');
  });

  it('lists across namespaces with -A and says when nothing is found', async () => {
    await client.create(SERVICE_TEMPLATE, template('a', 'get3a'), { namespace: 'get3a' });
    await client.create(SERVICE_TEMPLATE, template('b', 'get3b'), { namespace: 'get3b' });
    const all = await xenosctl(['get', 'st', '-A'], { env });
    expect(all.stdout.split('\n')[0]).toMatch(/^NAMESPACE\s+NAME\s+TYPE/);
    expect(all.stdout).toMatch(/^get3a\s+a\s+svc-a/m);
    expect(all.stdout).toMatch(/^get3b\s+b\s+svc-b/m);

    const none = await xenosctl(['get', 'st', '-n', 'empty-ns'], { env });
    expect(none).toMatchObject({
      code: 0,
      stdout: '',
      stderr: 'No resources found in empty-ns namespace.\n',
    });

    const missing = await xenosctl(['get', 'st', 'nope', '-n', 'get3a'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('servicetemplates.xenos.io "nope" not found');
  });

  it('-w prints the list, then each change', async () => {
    await client.create(SERVICE_TEMPLATE, template('w', 'get4'), { namespace: 'get4' });
    const watch = xenosctlUntil(['get', 'st', '-n', 'get4', '-w'], { env });
    await watch.waitFor(/^w\s+svc-w/m);
    await client.create(SERVICE_TEMPLATE, template('w2', 'get4'), { namespace: 'get4' });
    await client.patch(SERVICE_TEMPLATE, 'w', { spec: { serviceType: 'changed' } }, { namespace: 'get4' });
    const out = await watch.waitFor(/^w\s+changed/m);
    expect(out.split('\n').filter((l) => l.startsWith('NAME'))).toHaveLength(1);
    expect(out).toMatch(/^w2\s+svc-w2/m);
    watch.child.kill('SIGINT');
  });
});

describe('describe', () => {
  it('shows metadata, spec, status conditions and events (as the template controller wrote them)', async () => {
    // A real image directory: the controller imports it and writes status and an event.
    const image = mkdtempSync(join(tmpdir(), 'xenosctl-describe-image-'));
    try {
      writeFileSync(join(image, 'index.html'), 'hello\n');
      await client.create(SERVICE_TEMPLATE, template('d', 'desc1', { app: 'd' }, image), {
        namespace: 'desc1',
      });
      const ready = await waitForObject(
        xenosd,
        '/apis/xenos.io/v1alpha1/namespaces/desc1/servicetemplates',
        'd',
        (o) => o.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'),
        { what: 'the image imported (Ready True)' },
      );
      const digest = ready.status.digest as string;
      expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      const r = await xenosctl(['describe', 'st', 'd', '-n', 'desc1'], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^Name:\s+d$/m);
      expect(r.stdout).toMatch(/^Namespace:\s+desc1$/m);
      expect(r.stdout).toMatch(/^Labels:\s+app=d$/m);
      expect(r.stdout).toMatch(/^ {2}serviceType: svc-d$/m);
      expect(r.stdout).toMatch(/^ {2}phase: Ready$/m);
      expect(r.stdout).toContain(`  digest: ${digest}\n`);
      const onHost = `image ${digest} \\(\\d+ bytes\\) is on host test-host`;
      expect(r.stdout).toMatch(
        /^ {2}Ready\s+True\s+Ready\s+\d+s ago\s+1\s+the image is available to host test-host$/m,
      );
      expect(r.stdout).toMatch(
        new RegExp(`^ {2}ImageReady\\s+True\\s+Imported\\s+\\d+s ago\\s+1\\s+${onHost}$`, 'm'),
      );
      expect(r.stdout).toMatch(/^Events:/m);
      expect(r.stdout).toMatch(
        new RegExp(
          `^ {2}Normal\\s+Pulled\\s+\\S+\\s+servicetemplate-controller\\s+Image ${digest} \\(\\d+ bytes\\) imported from ${image}$`,
          'm',
        ),
      );
    } finally {
      rmSync(image, { recursive: true, force: true });
    }
  });
});

describe('wait', () => {
  it('waits for a condition of the current generation, and times out with the reason', async () => {
    await client.create(HOST, host('ghost-1'));
    const cond = (observedGeneration: number, status = 'True') => ({
      conditions: [
        {
          type: 'Ready',
          status,
          reason: 'Test',
          message: '',
          lastTransitionTime: new Date().toISOString(),
          observedGeneration,
        },
      ],
    });
    // The negative waits get 3s, not 1s: the timeout covers reading the object, which on a loaded machine
    // (xenosd running its controllers, other suites in parallel) took over a second, and the message then
    // says "it was not seen yet" instead of why the condition is not met.
    const early = await xenosctl(['wait', 'host/ghost-1', '--for=condition=Ready', '--timeout=3s'], { env });
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(
      /^error: timed out after 3s waiting for condition Ready=True on hosts\/ghost-1: it has no Ready condition yet\n$/,
    );

    const waiting = xenosctl(['wait', 'ho/ghost-1', '--for=condition=Ready', '--timeout=20s'], { env });
    await client.patchStatus(HOST, 'ghost-1', cond(1));
    expect(await waiting).toMatchObject({ code: 0, stdout: 'host.xenos.io/ghost-1 condition met\n' });

    // A new spec: the Ready of generation 1 no longer counts.
    const live = await client.patch(HOST, 'ghost-1', { spec: { unschedulable: true } });
    expect(live.metadata.generation).toBe(2);
    const stale = await xenosctl(['wait', 'host/ghost-1', '--for=condition=Ready', '--timeout=3s'], { env });
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('describes generation 1, not the current 2');
    await client.patchStatus(HOST, 'ghost-1', cond(2, 'False'));
    const falseNow = await xenosctl(['wait', 'host/ghost-1', '--for=condition=Ready=False', '--timeout=5s'], {
      env,
    });
    expect(falseNow.code, falseNow.stderr).toBe(0);
  });

  it('waits for deletion, finalizers included', async () => {
    await client.create(HOST, {
      ...host('ghost-2'),
      metadata: { name: 'ghost-2', finalizers: ['test.xenos.io/hold'] },
    });
    await client.delete(HOST, 'ghost-2');
    const held = await xenosctl(['wait', 'hosts', 'ghost-2', '--for=delete', '--timeout=3s'], { env });
    expect(held.code).toBe(1);
    expect(held.stderr).toContain('it is being deleted (finalizers pending)');

    const waiting = xenosctl(['wait', 'hosts', 'ghost-2', '--for=delete', '--timeout=20s'], { env });
    await client.patch(HOST, 'ghost-2', { metadata: { finalizers: null } });
    expect(await waiting).toMatchObject({ code: 0, stdout: 'host.xenos.io/ghost-2 condition met\n' });
  });
});

describe('delete', () => {
  it('deletes by KIND NAME and KIND/NAME, waits, and reports what was not found', async () => {
    await client.create(SERVICE_TEMPLATE, template('x', 'del1'), { namespace: 'del1' });
    await client.create(SERVICE_TEMPLATE, template('y', 'del1'), { namespace: 'del1' });
    const r = await xenosctl(['delete', 'st', 'x', '-n', 'del1'], { env });
    expect(r).toMatchObject({ code: 0, stdout: 'servicetemplate.xenos.io "x" deleted\n' });
    const r2 = await xenosctl(['delete', 'st/y', 'st/gone', '-n', 'del1'], { env });
    expect(r2.code).toBe(1);
    expect(r2.stdout).toBe('servicetemplate.xenos.io "y" deleted\n');
    expect(r2.stderr).toBe('error: servicetemplate.xenos.io "gone" not found\n');
    expect((await client.list(SERVICE_TEMPLATE, { namespace: 'del1' })).items).toEqual([]);
    const ignored = await xenosctl(['delete', 'st', 'gone', '-n', 'del1', '--ignore-not-found'], { env });
    expect(ignored).toMatchObject({ code: 0, stdout: '' });
  });
});

describe('connection and errors', () => {
  it('says how to fix an unreachable server, a bad token and usage mistakes', async () => {
    const down = await xenosctl(['get', 'st'], { env: { XENOS_SERVER: 'http://127.0.0.1:9' } });
    expect(down.code).toBe(1);
    expect(down.stderr).toBe(
      'error: cannot reach xenosd at http://127.0.0.1:9: connection refused (is xenosd running? set --server or XENOS_SERVER)\n',
    );

    const badToken = await xenosctl(['get', 'st', '--token', 'wrong'], { env: { XENOS_SERVER: xenosd.url } });
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toMatch(/^error: unauthorized: .*set --token or XENOS_TOKEN/);
    expect(badToken.stderr).not.toMatch(/\n\s+at /);

    const unknownKind = await xenosctl(['get', 'pods'], { env });
    expect(unknownKind.code).toBe(2);
    expect(unknownKind.stderr).toMatch(
      /^error: the server doesn't have a resource type "pods" \(known: .*serviceinstances \(si\)/,
    );

    const badFlag = await xenosctl(['get', 'st', '--bogus'], { env });
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain("error: unknown option '--bogus'");
  });

  it('finds the local xenosd through its data dir (api.addr, admin.token) without --server or --token', async () => {
    const r = await xenosctl(['get', 'hosts', '-o', 'name'], {
      cwd: xenosd.dataDir,
      env: { XENOS_DATA_DIR: xenosd.dataDir },
    });
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('kubeconfig and version', () => {
  it('prints a kubeconfig for this server and token, and both versions', async () => {
    const r = await xenosctl(['kubeconfig', '--name', 'lab'], { env });
    expect(r.code).toBe(0);
    const { load } = await import('js-yaml');
    expect(load(r.stdout)).toEqual({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'lab', cluster: { server: xenosd.url } }],
      users: [{ name: 'lab-admin', user: { token: xenosd.token } }],
      contexts: [{ name: 'lab', context: { cluster: 'lab', user: 'lab-admin', namespace: 'default' } }],
      'current-context': 'lab',
      preferences: {},
    });
    const v = await xenosctl(['version'], { env });
    expect(v.stdout).toMatch(/^Client Version: \S+\nServer Version: v1\.32\.0\+xenos-/);
  });
});
