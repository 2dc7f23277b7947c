// Manifest loading: every mistake is reported as file:line:column with its field path, files and
// directories load in a fixed order (recursively only with -R), stdin and `kind: List` work, the
// namespace defaults, relative image paths resolve, and every example in manifests/ validates.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  formatLocatedError,
  type LocatedError,
  loadManifestFiles,
  parseManifest,
  STDIN_FILE,
} from '../../src/api/manifest.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = join(repo, 'test/fixtures/manifests');
const tmp = mkdtempSync(join(tmpdir(), 'xenos-manifest-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const lines = (errors: LocatedError[]) => errors.map(formatLocatedError);

describe('parseManifest error positions', () => {
  const instance = (spec: string) =>
    `apiVersion: xenos.io/v1alpha1\nkind: ServiceInstance\nmetadata:\n  name: web-1\nspec:\n${spec}`;

  it('points an unknown field at its key', () => {
    const r = parseManifest(
      instance('  templateRef: {name: web}\n  hostSelectr:\n    zone: a\n'),
      'web.yaml',
    );
    expect(lines(r.errors)).toEqual(['web.yaml:7:3: spec.hostSelectr: unknown field "spec.hostSelectr"']);
    expect(r.docs).toEqual([]);
  });

  it('points a wrong enum value and a bad type at the value', () => {
    const r = parseManifest(
      instance('  templateRef: {name: web}\n  runStrategy: Sometimes\n  resources: {vcpus: "2"}\n'),
      'web.yaml',
    );
    expect(lines(r.errors)).toEqual([
      'web.yaml:7:16: spec.runStrategy: must be one of Always, RerunOnFailure, Manual, Halted; got "Sometimes"',
      'web.yaml:8:22: spec.resources.vcpus: must be an integer; got "2" (remove the quotes)',
    ]);
  });

  it('points a missing required field at its parent', () => {
    const r = parseManifest(instance('  runStrategy: Always\n'), 'web.yaml');
    expect(r.errors).toEqual([
      {
        file: 'web.yaml',
        line: 5,
        column: 1,
        path: 'spec.templateRef',
        message: 'Required value: The ServiceTemplate (in the same namespace) the instance runs.',
      },
    ]);
  });

  it('points a bad name at the name', () => {
    const r = parseManifest(
      'apiVersion: xenos.io/v1alpha1\nkind: ServiceInstance\nmetadata: {name: Web_1}\nspec: {templateRef: {name: web}}\n',
      'x.yaml',
    );
    expect(r.errors).toHaveLength(1);
    expect(formatLocatedError(r.errors[0])).toMatch(
      /^x\.yaml:3:18: metadata\.name: must be a DNS-1123 label/,
    );
  });

  it('reports a YAML syntax error at its line', () => {
    const r = parseManifest(instance('  templateRef: {name: web\n  runStrategy: Always\n'), 'broken.yaml');
    expect(r.docs).toEqual([]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0].line).toBe(7);
    expect(formatLocatedError(r.errors[0])).toMatch(/^broken\.yaml:7:\d+: YAML syntax error: /);
  });

  it('reports a document that is not an object, and a wrong kind at its value', () => {
    const r = parseManifest(
      'just a string\n---\napiVersion: xenos.io/v1alpha1\nkind: Pod\nmetadata: {name: p}\n',
      'k.yaml',
    );
    expect(lines(r.errors)).toEqual([
      'k.yaml:1:1: an object must be a mapping with apiVersion, kind, metadata and spec; got "just a string"',
      'k.yaml:4:7: kind: must be one of Host, ManifestSource, ServiceDeployment, ServiceInstance, ServiceMigration, ServiceTemplate; got "Pod"',
    ]);
  });

  it('locates errors of the second document of a file and keeps the first', async () => {
    const file = join(fixtures, 'bad-second-doc.yaml');
    const r = await loadManifestFiles([file]);
    const rel = relative(repo, file);
    expect(lines(r.errors).map((l) => l.slice(l.indexOf(rel)))).toEqual([
      `${rel}:17:16: spec.runStrategy: must be one of Always, RerunOnFailure, Manual, Halted; got "Sometimes"`,
      `${rel}:19:13: spec.resources.memory: must be a string; got integer 512 (quote it: "512")`,
      `${rel}:20:5: spec.resources.cpus: unknown field "spec.resources.cpus"`,
    ]);
    expect(r.docs.map((d) => [d.index, d.line, d.object.metadata.name])).toEqual([[0, 2, 'good']]);
  });

  it('locates errors inside a kind: List by item', () => {
    const text = [
      'apiVersion: v1',
      'kind: List',
      'items:',
      '  - apiVersion: xenos.io/v1alpha1',
      '    kind: Host',
      '    metadata: {name: h1}',
      '  - apiVersion: xenos.io/v1alpha1',
      '    kind: Host',
      '    metadata: {name: h2, namespace: default}',
    ].join('\n');
    const r = parseManifest(text, 'list.yaml');
    expect(lines(r.errors)).toEqual([
      'list.yaml:9:26: metadata.namespace: Host is cluster-scoped and has no namespace; remove metadata.namespace',
    ]);
    expect(r.docs.map((d) => [d.index, d.line, d.object.metadata.name])).toEqual([[0, 4, 'h1']]);
  });
});

describe('hostile manifests', () => {
  const good =
    'apiVersion: xenos.io/v1alpha1\nkind: ServiceInstance\nmetadata: {name: ok}\nspec: {templateRef: {name: web}}\n';

  it('refuses an alias bomb at file:line:col before expanding it, and keeps the other documents', () => {
    let bomb =
      'apiVersion: xenos.io/v1alpha1\nkind: ServiceInstance\nmetadata: {name: boom}\nspec:\n  parameters:\n';
    bomb += '    a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
    for (let i = 1; i <= 12; i++)
      bomb += `    a${i}: &a${i} [${Array(9)
        .fill(`*a${i - 1}`)
        .join(',')}]\n`;
    const r = parseManifest(`${good}---\n${bomb}`, 'bomb.yaml');
    expect(r.docs.map((d) => d.object.metadata.name)).toEqual(['ok']);
    expect(lines(r.errors)).toEqual([
      expect.stringMatching(
        /^bomb\.yaml:(1[5-9]|2\d):\d+: with its aliases expanded the document would be more than 16777216 bytes \(the limit\)/,
      ),
    ]);
  });

  it('refuses prototype keys and deep nesting at their key, with the field path', () => {
    const proto = parseManifest(
      `${good.replace('spec: {', 'spec: {"__proto__": {polluted: 1}, ')}`,
      'p.yaml',
    );
    expect(lines(proto.errors)).toEqual([
      expect.stringMatching(/^p\.yaml:4:8: spec\.__proto__: the key "__proto__" is not allowed/),
    ]);
    const deep = parseManifest(`${good}x: ${'['.repeat(120)}${']'.repeat(120)}\n`, 'd.yaml');
    expect(lines(deep.errors)).toEqual([
      expect.stringMatching(/^d\.yaml:5:\d+: nested deeper than 100 levels/),
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('parseManifest results', () => {
  it('defaults the namespace of namespaced kinds and says whether it was set', () => {
    const text = [
      'apiVersion: xenos.io/v1alpha1',
      'kind: ServiceMigration',
      'metadata: {name: m1}',
      'spec: {instanceRef: {name: web-1}, targetHost: node-2}',
      '---',
      'apiVersion: xenos.io/v1alpha1',
      'kind: ServiceMigration',
      'metadata: {name: m2, namespace: prod}',
      'spec: {instanceRef: {name: web-1}, targetHost: node-2}',
      '---',
      'apiVersion: xenos.io/v1alpha1',
      'kind: Host',
      'metadata: {name: node-2}',
    ].join('\n');
    const r = parseManifest(text, 'm.yaml');
    expect(r.errors).toEqual([]);
    expect(r.docs.map((d) => [d.object.metadata.namespace, d.namespaceSet])).toEqual([
      ['default', false],
      ['prod', true],
      [undefined, false],
    ]);
    expect(r.docs[0].object.spec).toEqual({ instanceRef: { name: 'web-1' }, targetHost: 'node-2' });
  });
});

describe('loadManifestFiles', () => {
  const tree = join(fixtures, 'tree');

  it('reads a directory in name order, without subdirectories unless recursive', async () => {
    const flat = await loadManifestFiles([tree]);
    expect(flat.errors).toEqual([]);
    expect(
      flat.docs.map((d) => `${relative(tree, d.file)}#${d.index} ${d.object.kind}/${d.object.metadata.name}`),
    ).toEqual([
      'a-template.yaml#0 ServiceTemplate/echo',
      'b-instances.yml#0 ServiceInstance/echo-1',
      'b-instances.yml#1 ServiceInstance/echo-2',
    ]);
    const deep = await loadManifestFiles([tree], { recursive: true });
    expect(deep.errors).toEqual([]);
    expect(deep.docs.map((d) => relative(tree, d.file))).toEqual([
      'a-template.yaml',
      'b-instances.yml',
      'b-instances.yml',
      'sub/c-host.json',
    ]);
    expect(deep.docs[3].object).toEqual({
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'Host',
      metadata: { name: 'node-1', labels: { zone: 'a' } },
      spec: { unschedulable: false },
    });
  });

  it('resolves a relative image path against the manifest file', async () => {
    const r = await loadManifestFiles([join(tree, 'a-template.yaml')]);
    expect((r.docs[0].object.spec as any).image.path).toBe(join(fixtures, 'image-dir'));
  });

  it('reads stdin for "-", resolving image paths against the working directory', async () => {
    const stdin =
      'apiVersion: xenos.io/v1alpha1\nkind: ServiceTemplate\nmetadata: {name: s}\nspec: {image: {path: img}}\n';
    const r = await loadManifestFiles(['-'], { stdin });
    expect(r.errors).toEqual([]);
    expect(r.docs[0].file).toBe(STDIN_FILE);
    expect((r.docs[0].object.spec as any).image.path).toBe(resolve(process.cwd(), 'img'));
    const none = await loadManifestFiles(['-']);
    expect(lines(none.errors)).toEqual([`${STDIN_FILE}: no standard input was given for "-"`]);
  });

  it('reports a missing path and an object defined twice', async () => {
    const dup = join(tmp, 'dup.yaml');
    writeFileSync(dup, 'apiVersion: xenos.io/v1alpha1\nkind: Host\nmetadata: {name: node-1}\n');
    const missing = join(tmp, 'nope.yaml');
    const r = await loadManifestFiles([join(tree, 'sub'), missing, dup]);
    expect(lines(r.errors)).toEqual([
      `${missing}: cannot read: no such file or directory`,
      `${dup}:1:1: Host node-1 is already defined at ${join(tree, 'sub/c-host.json')}:1`,
    ]);
  });

  it('stops when aborted', async () => {
    await expect(loadManifestFiles([tree], { signal: AbortSignal.abort() })).rejects.toThrow();
  });
});

describe('manifests/ (the examples users copy)', () => {
  it('all validate, and cover every kind but Host', async () => {
    const r = await loadManifestFiles([join(repo, 'manifests')], { recursive: true });
    expect(lines(r.errors)).toEqual([]);
    const kinds = new Set(r.docs.map((d) => d.object.kind));
    expect([...kinds].sort()).toEqual([
      'ServiceDeployment',
      'ServiceInstance',
      'ServiceMigration',
      'ServiceTemplate',
    ]);
    const web = r.docs.find((d) => d.object.kind === 'ServiceTemplate' && d.object.metadata.name === 'web');
    expect((web!.object.spec as any).image.path).toBe(join(repo, 'manifests/web/image'));
    const workers = r.docs.find((d) => d.object.kind === 'ServiceDeployment');
    expect((workers!.object.spec as any).spread.maxPerHost).toBe(2);
  });

  let server: ChildProcess | undefined;
  afterEach(async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = once(server, 'exit');
      server.kill('SIGTERM');
      await exited;
    }
    server = undefined;
  });

  it("web's image is a working HTTP service with the health endpoint the template checks", async () => {
    const r = await loadManifestFiles([join(repo, 'manifests/web/template.yaml')]);
    const spec = r.docs[0].object.spec as any;
    expect(spec.process.command).toEqual(['node', 'server.mjs']);
    server = spawn(process.execPath, spec.process.command.slice(1), {
      cwd: spec.image.path,
      env: { PORT: '0', GREETING: 'hi', XENOS_INSTANCE_NAME: 'web-1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(server, 'exit').then(([code]) => {
      throw new Error(`server.mjs exited with ${code} before listening`);
    });
    const [line] = (await Promise.race([once(server.stdout!, 'data'), exited])) as [Buffer];
    const port = Number(/listening on (\d+)/.exec(line.toString())?.[1]);
    expect(port).toBeGreaterThan(0);
    const health = await fetch(`http://127.0.0.1:${port}${spec.healthCheck.http.path}`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    const hello = await fetch(`http://127.0.0.1:${port}/`);
    expect(await hello.text()).toBe('hi from web-1\n');
  });
});
