// Property tests of manifest loading, the client's path (parseManifest: YAML/JSON text → documents →
// schema validation, what `xenosctl apply -f` runs) and the server's (decodeObject + the validator, what
// a POST runs). Inputs are the example manifests users copy (manifests/), mutated: pieces cut out,
// repeated, or replaced by hostile YAML. Properties: parseManifest never throws and never hangs; every
// error it reports is at file:line:col (line and column ≥ 1) with a message; every document it accepts
// is valid; the server's path ends in an object the validator judges or an ApiError 4xx located by line
// and column; Object.prototype never changes.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadKinds } from '../../src/api/kinds.ts';
import { formatLocatedError, parseManifest } from '../../src/api/manifest.ts';
import { decodeObject } from '../../src/api/request-body.ts';
import { ApiError } from '../../src/api/status-errors.ts';
import { Validator } from '../../src/api/validation.ts';
import { bounded, FUZZ_TEST_TIMEOUT_MS, fuzz, prototypeSnapshot } from '../fuzz.ts';

const repo = join(import.meta.dirname, '../..');
const EXAMPLES = [
  'web/template.yaml',
  'web/instance.yaml',
  'hadoop/vm/master.yaml',
  'hadoop/vm/template.yaml',
  'hadoop/vm/workers.yaml',
  'migration.yaml',
].map((f) => readFileSync(join(repo, 'manifests', f), 'utf8'));
const validator = new Validator(loadKinds());

/** What gets spliced into a manifest. */
const PIECES = [
  '',
  '\n',
  '  ',
  '    ',
  '- ',
  ': ',
  '{',
  '}',
  '[',
  ']',
  '"',
  "'",
  '&a ',
  '*a',
  '<<: *a',
  '__proto__: 1',
  '"\\x5f_proto__": {}',
  'constructor:',
  '!!js/function ',
  '---\n',
  '? ',
  '|\n',
  '1e400',
  '.inf',
  'null',
  '~',
  '\t',
  'spec:',
  'metadata:',
  'kind: List',
  'items:',
  'apiVersion: v1',
  '-1',
  '99999999999999999999',
  'é',
  '\u0000',
  'x'.repeat(300),
];

/** An example manifest with up to four edits: a piece inserted, a span removed, or a span repeated. */
const mutatedManifest = fc
  .tuple(
    fc.constantFrom(...EXAMPLES),
    fc.array(
      fc.tuple(
        fc.nat(),
        fc.nat({ max: 40 }),
        fc.constantFrom('insert', 'remove', 'repeat'),
        fc.constantFrom(...PIECES),
      ),
      {
        maxLength: 4,
      },
    ),
  )
  .map(([text, edits]) =>
    edits.reduce((t, [at, len, how, piece]) => {
      const i = at % (t.length + 1);
      if (how === 'insert') return t.slice(0, i) + piece + t.slice(i);
      if (how === 'remove') return t.slice(0, i) + t.slice(i + len);
      return t.slice(0, i + len) + t.slice(i, i + len) + t.slice(i + len);
    }, text),
  );

describe('manifest loading property', () => {
  it(
    'client: parseManifest never throws; every error is at file:line:col; every document it keeps is valid',
    () => {
      fc.assert(
        fc.property(mutatedManifest, (text) => {
          const proto = prototypeSnapshot();
          const result = bounded('parseManifest', () => parseManifest(text, 'm.yaml', { validator }));
          for (const e of result.errors) {
            expect(e.file).toBe('m.yaml');
            expect(e.line).toBeGreaterThanOrEqual(1);
            expect(e.column).toBeGreaterThanOrEqual(1);
            expect(e.message.length).toBeGreaterThan(0);
            expect(formatLocatedError(e).startsWith(`m.yaml:${e.line}:${e.column}: `)).toBe(true);
          }
          for (const d of result.docs) expect(validator.validate(d.object)).toEqual([]);
          expect(prototypeSnapshot()).toBe(proto);
        }),
        fuzz(400),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'server: a body decodes to an object the validator judges, or to a 4xx located by line and column',
    () => {
      fc.assert(
        fc.property(mutatedManifest, fc.constantFrom('yaml', 'json' as const), (yamlText, format) => {
          // The JSON form of the same (mutated) manifest, when there is one: mutations then hit JSON too.
          let text = yamlText;
          if (format === 'json') {
            const plain = parseManifest(yamlText, 'm.yaml', { validator }).docs[0]?.object;
            text = plain
              ? JSON.stringify(plain).replace(
                  /"spec":/,
                  yamlText.length % 2 ? '"spec": {"__proto__": 1},"x":' : '"spec":',
                )
              : yamlText;
          }
          const proto = prototypeSnapshot();
          let obj: Record<string, unknown>;
          try {
            obj = bounded('decodeObject', () => decodeObject(Buffer.from(text), format));
          } catch (err) {
            if (!(err instanceof ApiError)) throw err;
            expect(err.code === 400 || err.code === 413).toBe(true);
            expect(err.message).toMatch(
              /at line \d+, column \d+|request body is empty|must be one YAML document|single object/,
            );
            return;
          }
          const problems = bounded('validate', () => validator.validate(obj));
          for (const p of problems) {
            expect(typeof p.path).toBe('string');
            expect(p.message.length).toBeGreaterThan(0);
          }
          expect(prototypeSnapshot()).toBe(proto);
        }),
        fuzz(400),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );
});
