// Argument parsing of xenosctl: durations, -o formats, KIND NAME / KIND/NAME, --for, --dry-run.

import { describe, expect, it } from 'vitest';
import { parseDryRun, parseDuration, parseOutput, parseTypeNames, parseWaitFor } from '../../src/cli/args.ts';
import { UsageError } from '../../src/cli/errors.ts';

describe('parseDuration', () => {
  it.each([
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['1.5s', 1500],
    ['10', 10_000],
  ])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 'abc', '5x', '5s junk', 's'])('rejects %j with a usage error (exit 2)', (text) => {
    expect(() => parseDuration(text, '--timeout')).toThrow(UsageError);
    try {
      parseDuration(text, '--timeout');
    } catch (err) {
      expect((err as UsageError).exitCode).toBe(2);
      expect((err as Error).message).toContain('--timeout');
    }
  });
});

describe('parseOutput', () => {
  it('knows every format', () => {
    expect(parseOutput(undefined)).toEqual({ kind: 'table', wide: false });
    expect(parseOutput('wide')).toEqual({ kind: 'table', wide: true });
    expect(parseOutput('yaml')).toEqual({ kind: 'yaml' });
    expect(parseOutput('json')).toEqual({ kind: 'json' });
    expect(parseOutput('name')).toEqual({ kind: 'name' });
    expect(parseOutput('jsonpath={.metadata.name}')).toEqual({
      kind: 'jsonpath',
      template: '{.metadata.name}',
    });
  });

  it('rejects an unknown format naming the known ones', () => {
    expect(() => parseOutput('xml')).toThrow(/unknown output format "xml".*yaml, json/);
    expect(() => parseOutput('jsonpath=')).toThrow(UsageError);
  });
});

describe('parseTypeNames', () => {
  it('takes KIND NAME...', () => {
    expect(parseTypeNames(['si', 'a', 'b'])).toEqual([{ kind: 'si', names: ['a', 'b'] }]);
    expect(parseTypeNames(['si'])).toEqual([{ kind: 'si', names: [] }]);
    expect(parseTypeNames(['st,si', 'web'])).toEqual([
      { kind: 'st', names: ['web'] },
      { kind: 'si', names: ['web'] },
    ]);
  });

  it('takes KIND/NAME... grouped by kind in order', () => {
    expect(parseTypeNames(['si/a', 'st/x', 'si/b'])).toEqual([
      { kind: 'si', names: ['a', 'b'] },
      { kind: 'st', names: ['x'] },
    ]);
  });

  it('rejects mixed and malformed forms', () => {
    expect(() => parseTypeNames(['si/a', 'b'])).toThrow(UsageError);
    expect(() => parseTypeNames(['si', 'st/b'])).toThrow(UsageError);
    expect(() => parseTypeNames(['/a'])).toThrow(UsageError);
    expect(() => parseTypeNames([])).toThrow(UsageError);
  });
});

describe('parseWaitFor', () => {
  it('reads condition and delete', () => {
    expect(parseWaitFor('condition=Ready')).toEqual({ kind: 'condition', type: 'Ready', status: 'True' });
    expect(parseWaitFor('condition=Ready=false')).toEqual({
      kind: 'condition',
      type: 'Ready',
      status: 'False',
    });
    expect(parseWaitFor('delete')).toEqual({ kind: 'delete' });
  });

  it('rejects anything else', () => {
    expect(() => parseWaitFor(undefined)).toThrow(/--for is required/);
    expect(() => parseWaitFor('jsonpath=x')).toThrow(UsageError);
    expect(() => parseWaitFor('condition=Ready=Maybe')).toThrow(/True, False or Unknown/);
  });
});

describe('parseDryRun', () => {
  it('maps the flag forms', () => {
    expect(parseDryRun(undefined)).toBe('none');
    expect(parseDryRun('none')).toBe('none');
    expect(parseDryRun(true)).toBe('client');
    expect(parseDryRun('client')).toBe('client');
    expect(parseDryRun('server')).toBe('server');
    expect(() => parseDryRun('all')).toThrow(UsageError);
  });
});
