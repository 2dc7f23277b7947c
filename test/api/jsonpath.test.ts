// The JSONPath evaluator used for printer columns and `-o jsonpath`.

import { describe, expect, it } from 'vitest';
import { evaluateJsonPath, firstJsonPath, JsonPathError } from '../../src/api/jsonpath.ts';

const obj = {
  metadata: { name: 'web', labels: { 'app.io/name': 'w' } },
  spec: { disks: [{ name: 'root' }, { name: 'data' }] },
  status: {
    phase: 'Running',
    conditions: [
      { type: 'Scheduled', status: 'True' },
      { type: 'Ready', status: 'False' },
    ],
  },
};

describe('jsonpath', () => {
  it.each([
    ['.status.phase', ['Running']],
    ['{.status.phase}', ['Running']],
    ['.spec.disks[1].name', ['data']],
    ['.spec.disks[-1].name', ['data']],
    ['.spec.disks[*].name', ['root', 'data']],
    ["$.metadata.labels['app.io/name']", ['w']],
    ['.status.conditions[?(@.type=="Ready")].status', ['False']],
    ['.status.conditions[?(@.type!="Ready")].type', ['Scheduled']],
    ['.status.missing', []],
    ['.spec.disks[5].name', []],
  ])('%s', (path, want) => {
    expect(evaluateJsonPath(obj, path)).toEqual(want);
  });

  it('gives the first match and rejects syntax it does not know', () => {
    expect(firstJsonPath(obj, '.metadata.name')).toBe('web');
    expect(() => evaluateJsonPath(obj, '.a[1:2]')).toThrow(JsonPathError);
    expect(() => evaluateJsonPath(obj, '.a[')).toThrow(/unclosed/);
  });
});
