// xenosctl on hostile manifests (as a real child process): a YAML alias bomb, an alias cycle, more than
// 1,000 aliases, a prototype key and nesting past 100 levels are each refused before anything is
// expanded or sent, as file:line:col with the field path where there is one, exit code 1, and nothing
// applied (the server named in XENOS_SERVER does not exist: reaching it would be another error).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killAllCtl, xenosctl } from './run-xenosctl.ts';

const dir = mkdtempSync(join(tmpdir(), 'xenosctl-hostile-'));
afterEach(() => killAllCtl());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HEAD =
  'apiVersion: xenos.io/v1alpha1\nkind: ServiceInstance\nmetadata: {name: boom}\nspec:\n  templateRef: {name: web}\n';
const env = { XENOS_SERVER: 'http://127.0.0.1:9', XENOS_TOKEN: 'unused' };

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function refused(path: string): Promise<string> {
  const r = await xenosctl(['apply', '-f', path], { env });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('nothing was applied');
  expect(r.stderr).not.toMatch(/ECONNREFUSED|at .*\.ts:\d+/); // never reached the server; no stack trace
  return r.stderr;
}

describe('xenosctl apply -f with a hostile manifest', () => {
  it('refuses a 1 KiB alias bomb at the alias that crosses the limit', async () => {
    let bomb = `${HEAD}  parameters:\n    a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n`;
    for (let i = 1; i <= 12; i++)
      bomb += `    a${i}: &a${i} [${Array(9)
        .fill(`*a${i - 1}`)
        .join(',')}]\n`;
    expect(bomb.length).toBeLessThan(1100);
    const path = file('bomb.yaml', bomb);
    expect(await refused(path)).toMatch(
      new RegExp(`${path}:13:\\d+: with its aliases expanded the document would be more than 16777216 bytes`),
    );
  });

  it('refuses an alias cycle and more than 1,000 aliases', async () => {
    const cycle = file('cycle.yaml', `${HEAD}  parameters: &p {a: *p}\n`);
    expect(await refused(cycle)).toContain(`${cycle}:6:22: the alias *p sits inside the node &p it names`);
    const many = file(
      'many.yaml',
      `${HEAD}  parameters:\n    x: &x v\n    list: [${Array(1001).fill('*x').join(', ')}]\n`,
    );
    expect(await refused(many)).toMatch(new RegExp(`${many}:8:\\d+: more than 1000 aliases in one document`));
  });

  it('refuses a prototype key and deep nesting with the field path', async () => {
    const proto = file('proto.yaml', `${HEAD}  parameters:\n    "__proto__": {polluted: yes}\n`);
    expect(await refused(proto)).toContain(
      `${proto}:7:5: spec.parameters.__proto__: the key "__proto__" is not allowed`,
    );
    const deep = file('deep.yaml', `${HEAD}  parameters: ${'['.repeat(150)}${']'.repeat(150)}\n`);
    expect(await refused(deep)).toMatch(new RegExp(`${deep}:6:\\d+: nested deeper than 100 levels`));
  });
});
