// Label and field selectors: the Kubernetes syntax, matching rules (!= and notin match absent
// labels) and errors that point at the column and say what was expected.

import { describe, expect, it } from 'vitest';
import type { XObject } from '../../src/model/object.ts';
import { InvalidSelectorError } from '../../src/store/errors.ts';
import {
  formatLabelSelector,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  selectorFromLabels,
} from '../../src/store/selectors.ts';

describe('parseLabelSelector', () => {
  it('parses every operator', () => {
    expect(parseLabelSelector('a=1, b==2,c!=3,d in (x, y),e notin (z),f,!g,xenos.io/role=web')).toEqual([
      { key: 'a', operator: '=', values: ['1'] },
      { key: 'b', operator: '==', values: ['2'] },
      { key: 'c', operator: '!=', values: ['3'] },
      { key: 'd', operator: 'in', values: ['x', 'y'] },
      { key: 'e', operator: 'notin', values: ['z'] },
      { key: 'f', operator: 'exists', values: [] },
      { key: 'g', operator: '!exists', values: [] },
      { key: 'xenos.io/role', operator: '=', values: ['web'] },
    ]);
    expect(parseLabelSelector('')).toEqual([]);
    expect(parseLabelSelector('  ')).toEqual([]);
    expect(parseLabelSelector('a=')).toEqual([{ key: 'a', operator: '=', values: [''] }]);
  });

  it.each([
    ['a in (x', 'at column 8: expected "," or ")" in the value list, found the end of the selector'],
    ['a in ()', 'at least one value'],
    ['a notin x', 'expected "(" after "notin"'],
    ['=x', 'at column 1: expected a label key'],
    ['a=b c', 'expected "," between requirements'],
    ['a>1', 'the operator ">" is not supported'],
    ['A_/b=c', 'key prefix "A_" must be a DNS subdomain'],
    ['-a=b', 'is not a valid label key'],
    ['a=-b', 'is not a valid label value'],
    [`a=${'v'.repeat(64)}`, 'is not a valid label value'],
  ])('rejects %j: %s', (sel, said) => {
    let err: unknown;
    try {
      parseLabelSelector(sel);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidSelectorError);
    expect((err as InvalidSelectorError).code).toBe(400);
    expect((err as Error).message).toContain(said);
    expect((err as Error).message).toContain(`"${sel}"`);
  });

  it('round-trips through formatLabelSelector', () => {
    const text = 'a=1,b!=2,c in (x,y),d notin (z),e,!f';
    expect(formatLabelSelector(parseLabelSelector(text))).toBe(text);
  });
});

describe('matchesLabels', () => {
  const labels = { app: 'web', tier: 'front' };
  it.each([
    ['app=web', true],
    ['app=db', false],
    ['app!=db', true],
    ['missing!=x', true],
    ['missing notin (x)', true],
    ['missing in (x)', false],
    ['missing=x', false],
    ['app in (db,web)', true],
    ['app notin (db,web)', false],
    ['tier', true],
    ['!tier', false],
    ['!missing', true],
    ['app=web,tier=back', false],
    ['', true],
  ])('%j on app=web,tier=front → %s', (sel, want) => {
    expect(matchesLabels(parseLabelSelector(sel), labels)).toBe(want);
  });

  it('treats no labels as an empty set', () => {
    expect(matchesLabels(parseLabelSelector('a!=b,!c'), undefined)).toBe(true);
    expect(matchesLabels(parseLabelSelector('a'), undefined)).toBe(false);
  });

  it('reads a matchLabels map as equalities', () => {
    const sel = selectorFromLabels({ app: 'web' });
    expect(matchesLabels(sel, labels)).toBe(true);
    expect(matchesLabels(sel, { app: 'db' })).toBe(false);
  });
});

describe('field selectors', () => {
  const obj: XObject = { apiVersion: 'v', kind: 'K', metadata: { name: 'a=b,c', namespace: 'ns' } };

  it('parses =, == and != with escaped values, and matches', () => {
    const sel = parseFieldSelector('metadata.name=a\\=b\\,c,metadata.namespace!=other');
    expect(sel).toEqual([
      { field: 'metadata.name', operator: '=', value: 'a=b,c' },
      { field: 'metadata.namespace', operator: '!=', value: 'other' },
    ]);
    expect(matchesFields(sel, obj)).toBe(true);
    expect(matchesFields(parseFieldSelector('metadata.namespace==ns2'), obj)).toBe(false);
    expect(matchesFields(parseFieldSelector(''), obj)).toBe(true);
  });

  it('rejects unsupported fields and terms without an operator', () => {
    expect(() => parseFieldSelector('spec.host=x')).toThrow(/field label not supported: "spec.host"/);
    expect(() => parseFieldSelector('metadata.name')).toThrow(InvalidSelectorError);
    expect(parseFieldSelector('spec.host=x', ['spec.host'])).toHaveLength(1);
  });
});
