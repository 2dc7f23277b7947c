// The real kubectl 1.32 against a real xenosd (HTTPS with its self-signed certificate: kubectl only
// sends bearer tokens over TLS): discovery, client-side and server-side apply, get in every output
// format, diff, wait for a condition set through /status, describe with events, delete, errors, and
// scale through a ServiceDeployment's /scale.

import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDataDir, startXenosd, type XenosdProcess } from '../daemon/xenosd-process.ts';

const KUBECTL = '/usr/bin/kubectl';
const haveKubectl = existsSync(KUBECTL);
const haveOpenssl = ['/usr/bin/openssl', '/bin/openssl', '/usr/local/bin/openssl'].some(existsSync);

let xd: XenosdProcess;
let kubeconfig: string;
let cacheDir: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function kubectl(args: string[], opts: { signal?: AbortSignal } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      KUBECTL,
      ['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, ...args],
      { timeout: 30_000, signal: opts.signal },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as any).code === 'number' ? (err as any).code : 1) : 0;
        resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
      },
    );
  });
}

function manifest(file: string, spec: string): string {
  const path = join(xd.dataDir, file);
  writeFileSync(
    path,
    `apiVersion: xenos.io/v1alpha1\nkind: ServiceInstance\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n${spec}`,
  );
  return path;
}

// Stated reason: these tests drive the real kubectl binary and need openssl for the certificate.
describe.skipIf(!haveKubectl || !haveOpenssl)(`kubectl (${KUBECTL}) against xenosd`, () => {
  beforeAll(async () => {
    xd = await startXenosd({ args: ['--tls-self-signed'] });
    kubeconfig = join(xd.dataDir, 'kubeconfig');
    cacheDir = join(xd.dataDir, 'kube-cache');
    const ca = readFileSync(join(xd.dataDir, 'tls.crt')).toString('base64');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'xenos', cluster: { server: xd.url, 'certificate-authority-data': ca } }],
        users: [{ name: 'admin', user: { token: xd.token } }],
        contexts: [{ name: 'xenos', context: { cluster: 'xenos', user: 'admin', namespace: 'default' } }],
        'current-context': 'xenos',
      }),
    );
  });

  afterAll(async () => {
    await xd?.stop();
    if (xd) removeDataDir(xd.dataDir);
  });

  it('lists the kinds with api-resources', async () => {
    const r = await kubectl(['api-resources']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^serviceinstances\s+si\s+xenos\.io\/v1alpha1\s+true\s+ServiceInstance$/m);
    expect(r.stdout).toMatch(/^hosts\s+ho\s+xenos\.io\/v1alpha1\s+false\s+Host$/m);
  });

  it('applies client-side (twice: unchanged, though the server bound it) and shows printer columns', async () => {
    const file = manifest('web.yaml', '  templateRef: {name: tpl}\n');
    expect((await kubectl(['apply', '-f', file])).stdout.trim()).toBe('serviceinstance.xenos.io/web created');
    // The scheduler binds it (spec.host, a new generation), the controller adds its finalizer and writes
    // status: Pending, as template tpl does not exist. None of that is the user's: applying the same file
    // again must change nothing.
    const waited = await kubectl([
      'wait',
      '--for=jsonpath={.status.phase}=Pending',
      'si/web',
      '--timeout=20s',
    ]);
    expect(waited.stdout.trim(), waited.stderr).toBe('serviceinstance.xenos.io/web condition met');
    const bound = JSON.parse((await kubectl(['get', 'si', 'web', '-o', 'json'])).stdout);
    expect(bound.spec.host).toBe('test-host');
    expect(bound.metadata.generation).toBe(2);
    expect(bound.metadata.finalizers).toEqual(['xenos.io/domain']);
    expect((await kubectl(['apply', '-f', file])).stdout.trim()).toBe(
      'serviceinstance.xenos.io/web unchanged',
    );
    const after = JSON.parse((await kubectl(['get', 'si', 'web', '-o', 'json'])).stdout);
    expect(after.spec).toEqual(bound.spec);
    expect(after.metadata.generation).toBe(2);
    expect(after.metadata.finalizers).toEqual(['xenos.io/domain']);

    const get = await kubectl(['get', 'si']);
    const [header, row] = get.stdout.trim().split('\n');
    expect(header.split(/\s+/)).toEqual(['NAME', 'TEMPLATE', 'HOST', 'PHASE', 'READY', 'AGE']);
    expect(row).toMatch(/^web\s+tpl\s+test-host\s+Pending\s+False\s+\d+s$/);
    const wide = await kubectl(['get', 'serviceinstances', '-o', 'wide']);
    expect(wide.stdout.split('\n')[0]).toContain('RUN-STRATEGY');
    expect(wide.stdout.split('\n')[1]).toContain('Always');
    const all = await kubectl(['get', 'si', '-A']);
    expect(all.stdout.split('\n')[0]).toMatch(/^NAMESPACE\s+NAME/);
  });

  it('applies a ServiceTemplate client-side twice: unchanged the second time', async () => {
    const path = join(xd.dataDir, 'template.yaml');
    writeFileSync(
      path,
      'apiVersion: xenos.io/v1alpha1\nkind: ServiceTemplate\nmetadata:\n  name: tpl-k\nspec:\n' +
        '  serviceType: web.http\n  image: {path: /nonexistent/image}\n  process: {command: [sleep, "1"]}\n',
    );
    expect((await kubectl(['apply', '-f', path])).stdout.trim()).toBe(
      'servicetemplate.xenos.io/tpl-k created',
    );
    // Its controller works on it (and writes status) meanwhile; none of that is the file's.
    await kubectl(['wait', '--for=jsonpath={.status.observedGeneration}=1', 'st/tpl-k', '--timeout=20s']);
    expect((await kubectl(['apply', '-f', path])).stdout.trim()).toBe(
      'servicetemplate.xenos.io/tpl-k unchanged',
    );
  });

  it('prints the object as yaml, json and jsonpath', async () => {
    const json = JSON.parse((await kubectl(['get', 'si', 'web', '-o', 'json'])).stdout);
    expect(json).toMatchObject({
      kind: 'ServiceInstance',
      spec: { templateRef: { name: 'tpl' }, runStrategy: 'Always' },
    });
    expect((await kubectl(['get', 'si', 'web', '-o', 'yaml'])).stdout).toContain(
      'templateRef:\n    name: tpl',
    );
    expect((await kubectl(['get', 'si', 'web', '-o', 'jsonpath={.spec.templateRef.name}'])).stdout).toBe(
      'tpl',
    );
  });

  it('diffs without changing anything, then applies server-side', async () => {
    // h1 is no member host (no Host object): after the move no controller writes this instance's
    // status, so the next test's hand-written status stays as written.
    const file = manifest('web2.yaml', '  templateRef: {name: tpl2}\n  host: h1\n');
    const diff = await kubectl(['diff', '-f', file]);
    expect(diff.code).toBe(1); // 1: there are differences
    expect(diff.stdout).toContain('+    name: tpl2');
    expect((await kubectl(['get', 'si', 'web', '-o', 'jsonpath={.spec.templateRef.name}'])).stdout).toBe(
      'tpl',
    );
    // templateRef.name is client-side apply's (kubectl-client-side-apply set it): a conflict, unless forced.
    const refused = await kubectl(['apply', '--server-side', '-f', file]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'conflict with "kubectl-client-side-apply" using xenos.io/v1alpha1: .spec.templateRef.name',
    );
    expect((await kubectl(['get', 'si', 'web', '-o', 'jsonpath={.spec.templateRef.name}'])).stdout).toBe(
      'tpl',
    );
    const ssa = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', file]);
    expect(ssa.stdout.trim(), ssa.stderr).toBe('serviceinstance.xenos.io/web serverside-applied');
    const managed = JSON.parse(
      (await kubectl(['get', 'si', 'web', '-o', 'json', '--show-managed-fields'])).stdout,
    ).metadata.managedFields;
    expect(managed).toContainEqual(
      expect.objectContaining({
        manager: 'kubectl',
        operation: 'Apply',
        fieldsV1: expect.objectContaining({ 'f:spec': { 'f:host': {}, 'f:templateRef': { 'f:name': {} } } }),
      }),
    );
    // The same file again: unchanged on the server, as kubectl reports it.
    const again = await kubectl(['apply', '--server-side', '-f', file]);
    expect(again.stdout.trim(), again.stderr).toBe('serviceinstance.xenos.io/web serverside-applied');
    expect(
      (await kubectl(['get', 'si', 'web', '-o', 'jsonpath={.spec.host}/{.spec.templateRef.name}'])).stdout,
    ).toBe('h1/tpl2');
  });

  it('waits for a condition set through the status subresource', async () => {
    const generation = (await kubectl(['get', 'si', 'web', '-o', 'jsonpath={.metadata.generation}'])).stdout;
    const wait = kubectl(['wait', '--for=condition=Ready', 'si/web', '--timeout=25s']);
    // kubectl wait is listening (list + watch) once it has asked; setting the status now must wake it.
    const status = {
      status: {
        phase: 'Running',
        host: 'h1',
        observedGeneration: Number(generation),
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'HealthCheckPassed',
            message: 'ok',
            lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
            observedGeneration: Number(generation),
          },
        ],
      },
    };
    const patch = await kubectl([
      'patch',
      'si',
      'web',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify(status),
    ]);
    expect(patch.stdout.trim()).toBe('serviceinstance.xenos.io/web patched');
    const done = await wait;
    expect(done.stdout.trim()).toBe('serviceinstance.xenos.io/web condition met');
    const row = (await kubectl(['get', 'si', 'web', '--no-headers'])).stdout;
    expect(row).toMatch(/^web\s+tpl2\s+h1\s+Running\s+True\s+\d+s$/m);
  });

  it('describes the object with its events', async () => {
    const uid = (await kubectl(['get', 'si', 'web', '-o', 'jsonpath={.metadata.uid}'])).stdout;
    const event = join(xd.dataDir, 'event.json');
    writeFileSync(
      event,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: 'web.started', namespace: 'default' },
        involvedObject: {
          apiVersion: 'xenos.io/v1alpha1',
          kind: 'ServiceInstance',
          name: 'web',
          namespace: 'default',
          uid,
        },
        reason: 'DomainStarted',
        message: 'domain web started on h1',
        type: 'Normal',
        count: 1,
        firstTimestamp: new Date().toISOString(),
        lastTimestamp: new Date().toISOString(),
        source: { component: 'serviceinstance-controller', host: 'h1' },
      }),
    );
    const created = await kubectl(['create', '--raw', '/api/v1/namespaces/default/events', '-f', event]);
    expect(created.code).toBe(0);
    const d = await kubectl(['describe', 'si', 'web']);
    expect(d.stdout).toMatch(/^Name:\s+web$/m);
    expect(d.stdout, d.stdout + d.stderr).toMatch(
      /Normal\s+DomainStarted\s+\S+\s+serviceinstance-controller\s+domain web started on h1/,
    );
  });

  it('prints validation errors from the server', async () => {
    const bad = manifest('bad.yaml', '  templateRef: {name: tpl}\n  runStrategy: Sometimes\n');
    const r = await kubectl(['apply', '-f', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('spec.runStrategy');
    expect(r.stderr).toContain('Sometimes');
    const unknown = manifest('unknown.yaml', '  templateRef: {name: tpl}\n  bogus: 1\n');
    const u = await kubectl(['apply', '-f', unknown]);
    expect(u.stderr).toContain('unknown field "spec.bogus"');
  });

  it('deletes and waits until the object is gone', async () => {
    const r = await kubectl(['delete', 'si', 'web']);
    expect(r.stdout.trim()).toBe('serviceinstance.xenos.io "web" deleted');
    const get = await kubectl(['get', 'si']);
    expect(get.stderr.trim()).toBe('No resources found in default namespace.');
  });

  it('shows changes live with get -w', async () => {
    const file = manifest('watched.yaml', '  templateRef: {name: tpl}\n');
    const child = spawn(KUBECTL, [
      '--kubeconfig',
      kubeconfig,
      '--cache-dir',
      cacheDir,
      'get',
      'si',
      '-w',
      '--no-headers',
    ]);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    try {
      // The first line comes from the initial LIST; the object made next must arrive through the watch.
      await kubectl(['apply', '-f', file]);
      const deadline = Date.now() + 20_000;
      while (!/^web\s+tpl/m.test(out) && Date.now() < deadline)
        await new Promise((r) => child.stdout.once('data', r));
      expect(out).toMatch(/^web\s+tpl/m);
    } finally {
      child.kill();
    }
  });

  it('scales a ServiceDeployment through its scale subresource', async () => {
    const file = join(xd.dataDir, 'sd.yaml');
    writeFileSync(
      file,
      'apiVersion: xenos.io/v1alpha1\nkind: ServiceDeployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  template:\n    spec:\n      templateRef: {name: tpl}\n',
    );
    expect((await kubectl(['apply', '-f', file])).code).toBe(0);
    const scaled = await kubectl(['scale', 'servicedeployment', 'web', '--replicas', '3']);
    expect(scaled.stderr).toBe('');
    expect(scaled.stdout).toBe('servicedeployment.xenos.io/web scaled\n');
    const got = await kubectl(['get', 'sd', 'web', '-o', 'jsonpath={.spec.replicas}']);
    expect(got.stdout).toBe('3');
    expect((await kubectl(['delete', 'sd', 'web', '--wait=false'])).code).toBe(0);
  });
});
