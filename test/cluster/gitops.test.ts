// GitOps on two real xenosd processes, each watching its own clone of one temporary git repository
// (`--watch site=CLONE`): commits that add, change and remove manifests reach the cluster (a template's
// image imported from the checkout), both hosts agree without rewriting each other's objects, drift made
// by hand is undone, a broken file is reported with its file:line and prunes nothing, and each host's
// ManifestSource says which revision it applied.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../wait.ts';
import { type ClusterHost, ctl, TestCluster, waitFor } from './harness.ts';

const API = '/apis/xenos.io/v1alpha1';
const SI = `${API}/namespaces/default/serviceinstances`;

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', ['-C', dir, ...args], {
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'test',
      GIT_AUTHOR_EMAIL: 'test@example.org',
      GIT_COMMITTER_NAME: 'test',
      GIT_COMMITTER_EMAIL: 'test@example.org',
    },
  }).trim();
}

/** An instance nothing runs (halted, and no host matches it): pure desired state. */
function instance(name: string, extra = ''): string {
  return `apiVersion: xenos.io/v1alpha1
kind: ServiceInstance
metadata:
  name: ${name}${extra}
spec:
  templateRef: { name: web }
  runStrategy: Halted
  hostSelector: { zone: nowhere }
`;
}

const TEMPLATE = `apiVersion: xenos.io/v1alpha1
kind: ServiceTemplate
metadata:
  name: web
spec:
  serviceType: web.http
  image:
    path: ./image
  process:
    command: [node, server.mjs]
`;

describe('xenosd --watch: GitOps from a git repository on two hosts', () => {
  const cluster = new TestCluster({ hostTimeout: '5s' });
  const root = mkdtempSync(join(tmpdir(), 'xenos-gitops-'));
  const origin = join(root, 'origin');
  const clones = { a: join(root, 'clone-a'), b: join(root, 'clone-b') };
  /** A second repository, watched by `a` alone as source `swap`: branches v1 and v2 share no file. */
  const swap = join(root, 'swap');
  /** A symlink to one of two plain directories of manifests, watched by `a` alone as source `link`. */
  const link = join(root, 'link');
  let a: ClusterHost;
  let b: ClusterHost;

  function commit(message: string, files: Record<string, string | null>): string {
    for (const [file, text] of Object.entries(files)) {
      const path = join(origin, file);
      if (text === null) unlinkSync(path);
      else {
        mkdirSync(join(path, '..'), { recursive: true });
        writeFileSync(path, text);
      }
    }
    git(origin, 'add', '-A');
    git(origin, 'commit', '-q', '-m', message);
    return git(origin, 'rev-parse', 'HEAD');
  }

  const pullAll = () => {
    for (const c of Object.values(clones)) git(c, 'pull', '-q', '--ff-only');
  };

  const source = (h: ClusterHost) => cluster.json(h, `${API}/manifestsources/${h.name}.site`);
  const names = async (h: ClusterHost) =>
    ((await cluster.json(h, `${SI}?labelSelector=xenos.io/manifest-source%3Dsite`)).items as any[])
      .map((i) => i.metadata.name)
      .sort();
  /** Both hosts' ManifestSource at `revision`, and `a` holding exactly `want`. */
  const converged = (revision: string, want: string[]) =>
    waitFor(
      async () => {
        for (const h of [a, b]) {
          const s = await source(h).catch(() => undefined);
          if (s?.status?.revision !== `git:${revision}`) return false;
        }
        return JSON.stringify(await names(a)) === JSON.stringify(want);
      },
      `both hosts at ${revision.slice(0, 8)} with ${want.join(', ')}`,
      30_000,
    );

  beforeAll(async () => {
    mkdirSync(origin);
    git(origin, 'init', '-q', '-b', 'main');
    mkdirSync(join(origin, 'web', 'image'), { recursive: true });
    writeFileSync(join(origin, 'web', 'image', 'server.mjs'), 'console.log("hello")\n');
    commit('a template and two instances', {
      'web/template.yaml': TEMPLATE,
      'web/one.yaml': instance('one'),
      'web/two.yaml': instance('two'),
    });
    for (const c of Object.values(clones)) execFileSync('git', ['clone', '-q', origin, c]);
    mkdirSync(swap);
    git(swap, 'init', '-q', '-b', 'v1');
    const many = (v: string, prefix = 's') =>
      Object.fromEntries(
        Array.from({ length: 20 }, (_, i) => [
          `${v}/${prefix}${v}-${i}.yaml`,
          instance(`${prefix}${v}-${i}`),
        ]),
      );
    for (const [file, text] of Object.entries(many('1'))) {
      mkdirSync(join(swap, '1'), { recursive: true });
      writeFileSync(join(swap, file), text);
    }
    git(swap, 'add', '-A');
    git(swap, 'commit', '-q', '-m', 'v1');
    git(swap, 'checkout', '-q', '-b', 'v2');
    git(swap, 'rm', '-q', '-r', '1');
    for (const [file, text] of Object.entries(many('2'))) {
      mkdirSync(join(swap, '2'), { recursive: true });
      writeFileSync(join(swap, file), text);
    }
    git(swap, 'add', '-A');
    git(swap, 'commit', '-q', '-m', 'v2');
    git(swap, 'checkout', '-q', 'v1');
    for (const v of ['1', '2'])
      for (const [file, text] of Object.entries(many(v, 'l'))) {
        mkdirSync(join(root, `link-${v}`, v), { recursive: true });
        writeFileSync(join(root, `link-${v}`, file), text);
      }
    symlinkSync(join(root, 'link-1'), link);
    // Drift is repaired as the watch reports it: the periodic sync (a minute here) is not what does it.
    const watch = (dir: string) => ['--watch', `site=${dir}`, '--watch-interval', '60s'];
    a = await cluster.startHost('gitops-a', {
      args: [...watch(clones.a), '--watch', `swap=${swap}`, '--watch', `link=${link}`],
    });
    b = await cluster.startHost('gitops-b', { join: a.addrs, args: watch(clones.b) });
  }, 90_000);

  afterAll(async () => {
    // The sources go first: what they applied would otherwise come back as the cleanup deletes it.
    for (const dir of [clones.a, clones.b, swap, link]) rmSync(dir, { recursive: true, force: true });
    await cluster.cleanup();
    rmSync(root, { recursive: true, force: true });
  }, 90_000);

  it('applies the checkout, with the image imported from it, on both hosts alike', async () => {
    const head = git(origin, 'rev-parse', 'HEAD');
    await converged(head, ['one', 'two']);
    const template = await cluster.json(a, `${API}/namespaces/default/servicetemplates/web`);
    expect(template.spec.image.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(template.spec.image.path).toBeUndefined();
    expect(template.spec.image.format).toBe('directory');
    for (const h of [a, b]) {
      const s = await source(h);
      expect(s.spec).toEqual({ host: h.name, path: h === a ? clones.a : clones.b, sourceName: 'site' });
      expect(s.status).toMatchObject({ objects: 3, errorCount: 0, errors: [] });
      expect(s.status.conditions[0]).toMatchObject({ type: 'Ready', status: 'True' });
    }
    const listed = await ctl(a, ['get', 'manifestsources']);
    expect(listed.stdout).toMatch(
      /^NAME\s+HOST\s+PATH\s+REVISION\s+OBJECTS\s+APPLIED\s+PRUNED\s+ERRORS\s+LAST-SYNC\s+AGE$/m,
    );
    expect(listed.stdout).toMatch(
      new RegExp(`^gitops-a\\.site\\s+gitops-a\\s+\\S+\\s+git:${head}\\s+3\\s`, 'm'),
    );
    // Two hosts apply the same files every second: neither rewrites what the other wrote.
    // (A resourceVersion is each host's own revision: each host is compared with itself.)
    const first = await Promise.all([a, b].map((h) => cluster.json(h, `${SI}/one`)));
    await new Promise((r) => setTimeout(r, 3000));
    const later = await Promise.all([a, b].map((h) => cluster.json(h, `${SI}/one`)));
    expect(later).toEqual(first);
  }, 60_000);

  it('adds, changes and prunes as commits arrive', async () => {
    const head = commit('change one, remove two, add three', {
      'web/one.yaml': instance('one', '\n  annotations: { owner: team-a }'),
      'web/two.yaml': null,
      'web/three.yaml': instance('three'),
    });
    pullAll();
    await converged(head, ['one', 'three']);
    expect((await cluster.json(b, `${SI}/one`)).metadata.annotations.owner).toBe('team-a');
    expect((await b.api(`${SI}/two`)).status).toBe(404);
    // Each host writes to its own replica: both may prune `two` before hearing of the other's deletion
    // (the same tombstone either way).
    const pruned = (await source(a)).status.pruned + (await source(b)).status.pruned;
    expect(pruned).toBeGreaterThanOrEqual(1);
    expect(pruned).toBeLessThanOrEqual(2);
  }, 60_000);

  it('undoes drift: an object deleted or edited by hand comes back', async () => {
    expect((await b.api(`${SI}/three`, { method: 'DELETE' })).status).toBe(200);
    await b.api(`${SI}/one`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ metadata: { annotations: { owner: 'someone-else' } } }),
    });
    await waitFor(
      async () => {
        const three = await b.api(`${SI}/three`);
        const one = await cluster.json(b, `${SI}/one`);
        return three.status === 200 && one.metadata.annotations.owner === 'team-a';
      },
      'three back and one as the repository has it',
      15_000,
    );
  }, 30_000);

  it('reports a broken file at its line, applies the rest, and prunes nothing until it is fixed', async () => {
    const broken = commit('a broken file, four, and three removed', {
      'web/bad.yaml': `${instance('bad')}  bogus: true\n`,
      'web/four.yaml': instance('four'),
      'web/three.yaml': null,
    });
    pullAll();
    await waitFor(
      async () => (await source(a)).status?.revision === `git:${broken}`,
      'a at the broken revision',
    );
    const s = await waitFor(async () => {
      const now = await source(a);
      return now.status.errorCount > 0 && (await names(a)).includes('four') ? now : undefined;
    }, 'the error reported and four applied');
    expect(s.status.errors).toEqual([
      expect.stringMatching(/^web\/bad\.yaml:9:\d+: spec\.bogus: .*unknown field/i),
    ]);
    expect(s.status.conditions[0]).toMatchObject({
      type: 'Ready',
      status: 'False',
      reason: 'ManifestErrors',
    });
    // three's file is gone, but with a broken file in the revision nothing is pruned.
    expect(await names(a)).toEqual(['four', 'one', 'three']);

    const fixed = commit('fix the broken file', { 'web/bad.yaml': instance('bad') });
    pullAll();
    await converged(fixed, ['bad', 'four', 'one']);
    expect((await source(a)).status).toMatchObject({ errorCount: 0, errors: [] });
  }, 60_000);

  /** Switches source `name` from its first revision (20 instances `<p>1-*`) to its second (`switchTo()`,
   *  20 instances `<p>2-*`, no file in common), watching that it goes as one revision: never
   *  fewer than 20 of its instances, every status one revision with all 20 objects. */
  async function swapWhole(name: string, p: string, switchTo: () => void, revisions?: [string, string]) {
    const mine = async () =>
      ((await cluster.json(a, `${SI}?labelSelector=xenos.io/manifest-source%3D${name}`)).items as any[]).map(
        (i) => i.metadata.name as string,
      );
    const status = async () => (await cluster.json(a, `${API}/manifestsources/${a.name}.${name}`)).status;
    let last = '';
    const first = await until(
      () => `${name}: the first revision applied (last: ${last})`,
      async () => {
        const s = await status().catch((err: Error) => err.message);
        const now = await mine();
        last = `${JSON.stringify(s)}; ${now.length} instances`;
        return typeof s === 'object' && s.objects === 20 && now.length === 20 ? s.revision : undefined;
      },
    );
    if (revisions) expect(first).toBe(revisions[0]);
    switchTo();
    const seen: string[] = [];
    const broken: string[] = [];
    await waitFor(
      async () => {
        const [s, now] = await Promise.all([status(), mine()]);
        const state = `${s.revision} ${s.objects} ${now.length}`;
        seen.push(state);
        const known = !revisions || revisions.includes(s.revision);
        if (s.objects !== 20 || !known || now.length < 20) broken.push(state);
        return s.revision !== first && now.length === 20 && now.every((n) => n.startsWith(`${p}2-`));
      },
      `${name}: the second revision applied whole`,
      30_000,
    );
    expect(broken, `states seen: ${seen.join(', ')}`).toEqual([]);
  }

  it('applies a git checkout that swaps every file as one revision', async () => {
    const [v1, v2] = ['v1', 'v2'].map((b) => `git:${git(swap, 'rev-parse', b)}`);
    await swapWhole('swap', 's', () => git(swap, 'checkout', '-q', 'v2'), [v1, v2]);
  }, 60_000);

  it('applies a symlink switched to another directory as one revision', async () => {
    await swapWhole('link', 'l', () => {
      symlinkSync(join(root, 'link-2'), join(root, 'link-next'));
      renameSync(join(root, 'link-next'), link);
    });
  }, 60_000);

  it('refuses to take an object another source applied, and says so', async () => {
    writeFileSync(join(root, 'link-2', 'taken.yaml'), instance('one'));
    const s = await waitFor(async () => {
      const now = (await cluster.json(a, `${API}/manifestsources/${a.name}.link`)).status;
      return now.errorCount > 0 ? now : undefined;
    }, 'link to report the object it may not take');
    expect(s.errors).toEqual([
      expect.stringMatching(
        /^taken\.yaml:1: serviceinstance\/one: already applied by manifest source "site"/,
      ),
    ]);
    expect((await cluster.json(a, `${SI}/one`)).metadata.labels['xenos.io/manifest-source']).toBe('site');
  }, 30_000);
});
