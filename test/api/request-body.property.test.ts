// Property tests of request-body decoding (the server's path for JSON and YAML): on any text — JSON and
// YAML built from hostile tokens, real JSON with tokens spliced in, arbitrary strings — decodeBody either
// returns plain data (no prototype key, nothing nested past 100, no value JSON cannot hold) or throws an
// ApiError with a 4xx that says where (line and column); it never hangs; Object.prototype never
// changes. Round trips: JSON.stringify and js-yaml's dump of any value decode back to it.

import fc from 'fast-check';
import { dump } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { decodeBody } from '../../src/api/request-body.ts';
import { ApiError } from '../../src/api/status-errors.ts';
import { bounded, FUZZ_TEST_TIMEOUT_MS, fuzz, hasPrototypeKey, jsonArb, prototypeSnapshot } from '../fuzz.ts';

/** Pieces of YAML an attacker strings together. */
const YAML_TOKENS = [
  'a',
  'spec',
  '__proto__',
  'constructor',
  '"\\x5f_proto__"',
  "'prototype'",
  ': ',
  ':',
  '\n',
  '  ',
  '    ',
  '- ',
  '&a ',
  '&b ',
  '*a',
  '*b',
  '<<: ',
  '<<: [*a, *b]',
  '{',
  '}',
  '[',
  ']',
  ', ',
  '"',
  "'",
  '!!str ',
  '!!js/function ',
  '!!binary ',
  '!<tag:yaml.org,2002:int> ',
  '---\n',
  '...\n',
  '? ',
  '|\n  ',
  '>-\n  ',
  '# c',
  '1e400',
  '.inf',
  '-.nan',
  'null',
  '~',
  '0x1F',
  '0o17',
  '1_000',
  'é',
  '\t',
  '%YAML 1.2\n',
  '\\u0000',
  '\u0000',
  '\ufeff',
];
/** Pieces of JSON spliced into real JSON. */
const JSON_TOKENS = [
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '"',
  '\\',
  '"__proto__":',
  '"\\u005f_proto__":',
  '"constructor":{"prototype":',
  '1e400',
  '-0',
  '01',
  'NaN',
  'true',
  'nul',
  '\n',
  '\u0000',
  '"a":1,"a":2',
  '[[[[[[[[[[',
  '\ufeff',
];

const tokens = (list: string[], max: number) =>
  fc.array(fc.constantFrom(...list), { maxLength: max }).map((t) => t.join(''));

/** Real JSON text with up to three tokens spliced in at random places. */
const spliced = fc
  .tuple(
    jsonArb(5).map((v) => JSON.stringify(v)),
    fc.array(fc.tuple(fc.nat(), fc.constantFrom(...JSON_TOKENS)), { maxLength: 3 }),
  )
  .map(([text, cuts]) =>
    cuts.reduce((t, [at, tok]) => {
      const i = at % (t.length + 1);
      return t.slice(0, i) + tok + t.slice(i);
    }, text),
  );

function maxDepth(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + children.reduce<number>((m, c) => Math.max(m, maxDepth(c)), 0);
}

function finiteEverywhere(v: unknown): boolean {
  if (typeof v === 'number') return Number.isFinite(v);
  if (v === null || typeof v !== 'object') return true;
  return (Array.isArray(v) ? v : Object.values(v)).every(finiteEverywhere);
}

/** Decodes `text`; an accepted body is plain data, a refused one an ApiError saying where. */
function checkDecode(text: string, format: 'json' | 'yaml'): void {
  const before = prototypeSnapshot();
  let value: unknown;
  try {
    value = bounded(`decoding ${format}`, () => decodeBody(Buffer.from(text), format));
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    expect(err.code === 400 || err.code === 413, err.message).toBe(true);
    expect(err.message).toMatch(/at line \d+, column \d+|request body is empty|must be one YAML document/);
    expect(prototypeSnapshot()).toBe(before);
    return;
  }
  expect(hasPrototypeKey(value)).toBe(false);
  expect(maxDepth(value)).toBeLessThanOrEqual(100);
  expect(finiteEverywhere(value)).toBe(true);
  expect(prototypeSnapshot()).toBe(before);
}

describe('decodeBody property', () => {
  it(
    'JSON: any text is plain data or a located 4xx',
    () => {
      fc.assert(
        fc.property(fc.oneof(spliced, tokens(JSON_TOKENS, 30), fc.string({ maxLength: 60 })), (text) =>
          checkDecode(text, 'json'),
        ),
        fuzz(400),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'YAML: any text is plain data or a located 4xx',
    () => {
      fc.assert(
        fc.property(fc.oneof(tokens(YAML_TOKENS, 40), spliced, fc.string({ maxLength: 60 })), (text) =>
          checkDecode(text, 'yaml'),
        ),
        fuzz(400),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'round trip: what JSON.stringify and js-yaml write decodes back to the same value (prototype keys refused)',
    () => {
      fc.assert(
        fc.property(jsonArb(6), (v) => {
          const expected = JSON.parse(JSON.stringify(v));
          for (const [format, text] of [
            ['json', JSON.stringify(v)],
            ['yaml', dump(v)],
          ] as const) {
            if (
              text.trim() === '' ||
              text.trim() === 'null' ||
              (format === 'yaml' && /(^|\n)\s*(- )*<<:/.test(text))
            )
              continue;
            if (hasPrototypeKey(v)) {
              expect(() => decodeBody(Buffer.from(text), format)).toThrow(/is not allowed/);
              continue;
            }
            // Through JSON: -0 is 0 there, as in the store.
            expect(JSON.parse(JSON.stringify(decodeBody(Buffer.from(text), format)))).toEqual(expected);
          }
        }),
        fuzz(300),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );
});
