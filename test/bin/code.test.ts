// bin/code.js: xenosd and xenosctl run the build in dist/ only while it is newer than every source
// file and folder, and say so by the URL they import; the build itself runs (when this checkout has a
// current one, as after `npm install`).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { codeFile, distIsCurrent } from '../../bin/code.js';

const run = promisify(execFile);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A package tree with sources and a dist built at `builtAt`; every source dated `sourcesAt`. */
function tree(sourcesAt: Date, builtAt?: Date): string {
  const root = mkdtempSync(join(tmpdir(), 'xenos-code-'));
  dirs.push(root);
  const files = ['src/daemon/main.ts', 'src/api/kinds.ts', 'controllers/host/controller.ts'];
  for (const f of files) {
    mkdirSync(join(root, f, '..'), { recursive: true });
    writeFileSync(join(root, f), '// source\n');
  }
  for (const p of [...files, 'src/daemon', 'src/api', 'controllers/host', 'src', 'controllers']) {
    utimesSync(join(root, p), sourcesAt, sourcesAt);
  }
  if (builtAt) {
    mkdirSync(join(root, 'dist/src/daemon'), { recursive: true });
    writeFileSync(join(root, 'dist/BUILT'), `${builtAt.toISOString()}\n`);
    utimesSync(join(root, 'dist/BUILT'), builtAt, builtAt);
  }
  return root;
}

const t0 = new Date('2026-01-01T00:00:00Z');
const later = new Date('2026-01-01T01:00:00Z');

describe('which code the bins run', () => {
  it('runs the sources when there is no build', () => {
    const root = tree(t0);
    expect(distIsCurrent(root)).toBe(false);
    expect(codeFile('src/daemon/main.ts', { root, env: {} })).toBe(`file://${root}/src/daemon/main.ts`);
  });

  it('runs the build while it is newer than every source', () => {
    const root = tree(t0, later);
    expect(distIsCurrent(root)).toBe(true);
    expect(codeFile('src/daemon/main.ts', { root, env: {} })).toBe(`file://${root}/dist/src/daemon/main.js`);
  });

  it('runs the sources once a source file changed after the build', () => {
    const root = tree(t0, later);
    const edited = new Date(later.getTime() + 1000);
    utimesSync(join(root, 'controllers/host/controller.ts'), edited, edited);
    expect(distIsCurrent(root)).toBe(false);
  });

  it('runs the sources once a source file was added or removed after the build', () => {
    const root = tree(t0, later);
    rmSync(join(root, 'src/api/kinds.ts'));
    expect(distIsCurrent(root)).toBe(false);
  });

  it('does as XENOS_CODE says', () => {
    const built = tree(t0, later);
    expect(codeFile('src/cli/main.ts', { root: built, env: { XENOS_CODE: 'sources' } })).toMatch(
      /\/src\/cli\/main\.ts$/,
    );
    const none = tree(t0);
    expect(codeFile('src/cli/main.ts', { root: none, env: { XENOS_CODE: 'dist' } })).toMatch(
      /\/dist\/src\/cli\/main\.js$/,
    );
  });

  it.runIf(distIsCurrent())("this checkout's build runs: xenosctl answers from dist/", async () => {
    const bin = join(import.meta.dirname, '../../bin/xenosctl.js');
    const { stdout } = await run(process.execPath, [bin, 'version', '--client'], {
      env: { ...process.env, XENOS_CODE: 'dist' },
    });
    expect(stdout).toMatch(/\d+\.\d+\.\d+/);
  });
});
