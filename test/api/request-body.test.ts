// Request bodies as an attacker writes them: every refusal is an ApiError with a 4xx code, a line and
// column, and (for a field's problem) the field path; nothing reaches Object.prototype; an alias bomb is
// refused before it is expanded. The HTTP side of the same is test/api/hostile-input.test.ts.

import { describe, expect, it } from 'vitest';
import { decodeBody } from '../../src/api/request-body.ts';
import { ApiError } from '../../src/api/status-errors.ts';
import { aliasBomb, deepJson } from './hostile-bodies.ts';

function refusal(text: string, format: 'json' | 'yaml'): ApiError {
  try {
    decodeBody(Buffer.from(text), format);
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error(`accepted: ${text.slice(0, 80)}`);
}

describe('JSON bodies', () => {
  it.each([
    ['{"__proto__": {"polluted": true}}', '__proto__', 1, 2],
    ['{"spec": {"constructor": {"prototype": {}}}}', 'spec.constructor', 1, 11],
    ['{"metadata": {\n  "labels": {"prototype": "x"}}}', 'metadata.labels.prototype', 2, 14],
    // The same keys spelled with \u escapes decode to the same names.
    ['{"\\u005f\\u005fproto\\u005f\\u005f": {}}', '__proto__', 1, 2],
    ['[{"op": "add", "path": "/a", "value": {"x": {"__proto__": 1}}}]', '[0].value.x.__proto__', 1, 46],
  ])('refuses the prototype key in %s at its path and position', (text, path, line, column) => {
    const err = refusal(text, 'json');
    expect(err.code).toBe(400);
    expect(err.message).toContain(`at line ${line}, column ${column}: ${path}: the key`);
    expect(err.details?.causes?.[0]).toMatchObject({ field: path, reason: 'FieldValueForbidden' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses nesting past 100 levels before JSON.parse builds it, at the opening bracket', () => {
    expect(() => decodeBody(Buffer.from(deepJson(100)), 'json')).not.toThrow();
    const err = refusal(deepJson(101), 'json');
    expect(err.code).toBe(400);
    expect(err.message).toMatch(/at line 1, column 501: a(\.a){99}: nested deeper than 100 levels/);
    // Three megabytes of "[" would take JSON.parse a second and a lot of memory; this refuses at byte 101.
    expect(refusal('['.repeat(3 * 1024 * 1024), 'json').message).toContain('column 101');
  });

  it('refuses duplicate keys and numbers past a double, and locates every syntax error', () => {
    expect(refusal('{"kind": "A", "kind": "B"}', 'json').message).toContain(
      'kind: the key "kind" appears twice in one object',
    );
    expect(refusal('{"spec": {"replicas": 1e400}}', 'json').message).toContain(
      'spec.replicas: the number 1e400 is too large',
    );
    // Every syntax error says where, also those V8's own messages leave unlocated.
    expect(refusal('{"a": [1, 2,', 'json').message).toBe(
      'the request body is not valid JSON at line 1, column 13: expected a value, found the end of the body',
    );
    expect(refusal('{"a":\n }', 'json').message).toMatch(
      /not valid JSON at line 2, column 2: expected a value/,
    );
    expect(refusal('{"a": "\\x"}', 'json').message).toMatch(
      /at line 1, column 8: a: an escape JSON does not have/,
    );
    expect(refusal('{"a": 1} {}', 'json').message).toContain('column 10: expected the end of the body');
    // A key with an escaped quote, a string holding brackets: no false alarms.
    expect(decodeBody(Buffer.from('{"a\\"b": "[[[{", "c": ["}"]}'), 'json')).toEqual({
      'a"b': '[[[{',
      c: ['}'],
    });
  });
});

describe('YAML bodies', () => {
  it('refuses an alias bomb before expanding it: 413 at the alias that crosses the limit', () => {
    const bomb = aliasBomb(9);
    expect(bomb.length).toBeLessThan(1024);
    const err = refusal(bomb, 'yaml');
    expect(err.code).toBe(413);
    expect(err.reason).toBe('RequestEntityTooLarge');
    expect(err.message).toMatch(
      /refused at line \d+, column \d+: with its aliases expanded the document would be more than 1572864 bytes/,
    );
  });

  it('refuses more than 1000 aliases, and an alias inside the node it names', () => {
    const many = `a: &a x\nb: [${Array(1001).fill('*a').join(', ')}]\n`;
    expect(refusal(many, 'yaml').message).toMatch(/line 2, column \d+: more than 1000 aliases/);
    expect(refusal('a: &a [1, *a]\n', 'yaml').message).toContain(
      'line 1, column 11: the alias *a sits inside',
    );
  });

  it.each([
    ['__proto__: {polluted: true}\n', '__proto__', 1],
    ['spec:\n  "\\x5f_proto__": 1\n', 'spec.__proto__', 2],
    ['base: &b {constructor: 1}\nspec:\n  <<: *b\n', 'base.constructor', 1],
    // A merge key copies the anchor's keys into the map: found where they land, too.
    ['spec:\n  <<: {prototype: 1}\n', 'spec.prototype', 1],
  ])('refuses the prototype key in %j with its line and path', (text, path, line) => {
    const err = refusal(text, 'yaml');
    expect(err.code).toBe(400);
    expect(err.message).toMatch(
      new RegExp(`at line ${line}, column \\d+: ${path.replace(/[.[\]]/g, '\\$&')}: the key`),
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses deep nesting, also when an alias nests a node deeper than the parser saw', () => {
    expect(refusal(`${'['.repeat(101)}${']'.repeat(101)}`, 'yaml').message).toContain(
      'nested deeper than 100',
    );
    const half = (n: number, inner: string) => `${'['.repeat(n)}${inner}${']'.repeat(n)}`;
    const text = `a: &a ${half(60, '1')}\nb: ${half(60, '*a')}\n`;
    expect(refusal(text, 'yaml').message).toMatch(
      /^the request body is refused at line 2, column \d+: b(\[0\]){59}.*nested deeper than 100/,
    );
  });

  it('refuses numbers JSON cannot hold, at their field', () => {
    expect(refusal('spec:\n  replicas: .inf\n', 'yaml').message).toMatch(
      /at line 2, column 13: spec\.replicas: Infinity is not a number JSON can hold/,
    );
    expect(refusal('spec: {replicas: -.inf}\n', 'yaml').message).toContain('spec.replicas: -Infinity');
    // js-yaml reads a float past a double as text: the schema check then says it is not a number.
    expect(decodeBody(Buffer.from('spec: {replicas: 1e400}\n'), 'yaml')).toEqual({
      spec: { replicas: '1e400' },
    });
    expect(refusal('a: [.nan]\n', 'yaml').message).toContain('a[0]: NaN is not a number');
  });

  it('refuses language tags, several documents and syntax errors with positions', () => {
    expect(refusal('a: !!js/function "function(){}"\n', 'yaml').message).toMatch(
      /not valid YAML at line 1, column 4: unknown scalar tag .*js\/function/,
    );
    expect(refusal('a: 1\n---\nb: 2\n', 'yaml').message).toContain('must be one YAML document; it has 2');
    expect(refusal('a: [1, 2\n', 'yaml').message).toMatch(/not valid YAML at line \d+, column \d+/);
  });

  it('still takes ordinary anchors, aliases and merge keys', () => {
    const text = 'base: &b {app: web}\nlabels:\n  <<: *b\n  tier: front\nlist: [*b, *b]\n';
    expect(decodeBody(Buffer.from(text), 'yaml')).toEqual({
      base: { app: 'web' },
      labels: { app: 'web', tier: 'front' },
      list: [{ app: 'web' }, { app: 'web' }],
    });
  });
});
