// xenosctl's printers: kubectl-style tables from printer columns, AGE, jsonpath templates,
// unified diffs and the describe layout.

import { describe, expect, it } from 'vitest';
import { describeObject } from '../../src/cli/printers/describe.ts';
import { renderTemplate } from '../../src/cli/printers/jsonpath-template.ts';
import { formatTable, objectTable } from '../../src/cli/printers/table.ts';
import { unifiedDiff } from '../../src/cli/printers/unified-diff.ts';
import type { XObject } from '../../src/model/object.ts';

const NOW = Date.parse('2025-01-10T12:00:00Z');

function instance(name: string, ageMs: number, extra: Partial<XObject> = {}): XObject {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: {
      name,
      namespace: 'default',
      creationTimestamp: new Date(NOW - ageMs).toISOString(),
      generation: 1,
    },
    spec: { templateRef: { name: 'web' } },
    ...extra,
  };
}

const KIND = {
  printerColumns: [
    { name: 'Phase', type: 'string' as const, jsonPath: '.status.phase' },
    { name: 'Ready', type: 'string' as const, jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    { name: 'Age', type: 'date' as const, jsonPath: '.metadata.creationTimestamp' },
    { name: 'Host', type: 'string' as const, jsonPath: '.status.host', priority: 1 },
  ],
};

describe('formatTable', () => {
  it('pads columns by three spaces and leaves no trailing blanks', () => {
    expect(
      formatTable(
        ['NAME', 'AGE'],
        [
          ['a', '5s'],
          ['longer-name', '3m'],
        ],
      ),
    ).toBe('NAME          AGE\na             5s\nlonger-name   3m\n');
  });
});

describe('objectTable', () => {
  it('puts NAME first, humanizes AGE like kubectl and prints <none> for empty cells', () => {
    const ready = instance('web', 5_000, {
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'True', reason: 'Up', message: '', lastTransitionTime: '' }],
      },
    });
    const t = objectTable(KIND, [ready, instance('db', 3 * 60_000), instance('old', 4 * 86_400_000)], {
      now: NOW,
    });
    expect(t.headers).toEqual(['NAME', 'PHASE', 'READY', 'AGE']);
    expect(t.rows).toEqual([
      ['web', 'Running', 'True', '5s'],
      ['db', '<none>', '<none>', '3m'],
      ['old', '<none>', '<none>', '4d'],
    ]);
  });

  it('shows priority columns only when wide, and NAMESPACE first with -A', () => {
    const o = instance('web', 5 * 3_600_000, { status: { host: 'h1' } as never });
    expect(objectTable(KIND, [o], { now: NOW, wide: true }).headers).toEqual([
      'NAME',
      'PHASE',
      'READY',
      'AGE',
      'HOST',
    ]);
    const all = objectTable(KIND, [o], { now: NOW, withNamespace: true });
    expect(all.headers[0]).toBe('NAMESPACE');
    expect(all.rows[0]).toEqual(['default', 'web', '<none>', '<none>', '5h']);
  });

  it('gives NAME and AGE to a kind without printer columns', () => {
    expect(objectTable({ printerColumns: [] }, [instance('x', 61_000)], { now: NOW })).toEqual({
      headers: ['NAME', 'AGE'],
      rows: [['x', '61s']],
    });
  });
});

describe('renderTemplate', () => {
  const list = { kind: 'List', items: [instance('a', 0), instance('b', 0)] };

  it('prints paths, literals and ranges', () => {
    expect(renderTemplate('{.items[*].metadata.name}', list)).toBe('a b');
    expect(renderTemplate('{range .items[*]}{.metadata.name}{"\\n"}{end}', list)).toBe('a\nb\n');
    expect(renderTemplate('name={.metadata.name}', instance('x', 0))).toBe('name=x');
    expect(renderTemplate('{.spec}', instance('x', 0))).toBe('{"templateRef":{"name":"web"}}');
  });

  it('rejects unbalanced templates', () => {
    expect(() => renderTemplate('{range .items[*]}{.x}', list)).toThrow(/range.*without.*end/);
    expect(() => renderTemplate('{.a', list)).toThrow(/unclosed/);
  });
});

describe('unifiedDiff', () => {
  it('is empty for equal texts', () => {
    expect(unifiedDiff('a\nb\n', 'a\nb\n', { a: 'x', b: 'y' })).toBe('');
  });

  it('prints hunks with context and line numbers like diff -u', () => {
    const a = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'].join('\n') + '\n';
    const b = ['1', '2', '3', '4', 'five', '6', '7', '8', '9', '10', '11'].join('\n') + '\n';
    expect(unifiedDiff(a, b, { a: 'live', b: 'merged' })).toBe(
      [
        '--- live',
        '+++ merged',
        '@@ -2,9 +2,10 @@',
        ' 2',
        ' 3',
        ' 4',
        '-5',
        '+five',
        ' 6',
        ' 7',
        ' 8',
        ' 9',
        ' 10',
        '+11',
        '',
      ].join('\n'),
    );
  });

  it('diffs against nothing for a new object', () => {
    expect(unifiedDiff('', 'a: 1\n', { a: '/dev/null', b: 'merged' })).toBe(
      '--- /dev/null\n+++ merged\n@@ -0,0 +1,1 @@\n+a: 1\n',
    );
  });
});

describe('describeObject', () => {
  it('shows metadata, spec, conditions, endpoints and events', () => {
    const o = instance('web', 60_000, {
      status: {
        phase: 'Running',
        observedGeneration: 1,
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'Healthy',
            message: 'all good',
            lastTransitionTime: new Date(NOW - 30_000).toISOString(),
            observedGeneration: 1,
          },
        ],
        endpoints: [
          { name: 'http', address: '127.0.0.1', port: 8080, protocol: 'TCP', url: 'http://127.0.0.1:8080' },
        ],
      } as never,
    });
    o.metadata.labels = { app: 'web' };
    o.metadata.annotations = { 'xenos.io/last-applied': '{}' };
    const text = describeObject(
      o,
      [
        {
          type: 'Normal',
          reason: 'Started',
          message: 'domain up',
          lastTimestamp: new Date(NOW - 10_000).toISOString(),
          source: { component: 'xenosd' },
        },
      ],
      NOW,
    );
    expect(text).toMatch(/^Name:\s+web$/m);
    expect(text).toMatch(/^Labels:\s+app=web$/m);
    expect(text).toMatch(/^Annotations:\s+<none>$/m);
    expect(text).toMatch(/^Spec:\n {2}templateRef:\n {4}name: web$/m);
    expect(text).toMatch(/^ {2}phase: Running$/m);
    expect(text).toMatch(/^ {2}Ready\s+True\s+Healthy\s+30s ago\s+1\s+all good$/m);
    expect(text).toMatch(/^ {2}http\s+127\.0\.0\.1\s+8080\s+TCP\s+http:\/\/127\.0\.0\.1:8080$/m);
    expect(text).toMatch(/^ {2}Normal\s+Started\s+10s\s+xenosd\s+domain up$/m);
    expect(describeObject(instance('x', 0), [], NOW)).toMatch(/^Events:\s+<none>$/m);
  });
});
