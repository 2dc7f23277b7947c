// The conditions helper: lastTransitionTime moves only when status flips, and Ready's summary.

import { describe, expect, it } from 'vitest';
import type { BaseStatus } from '../../src/model/object.ts';
import {
  getCondition,
  markStalled,
  removeCondition,
  setCondition,
  summariseReady,
} from '../../src/reconcile/conditions.ts';

const T1 = new Date('2025-01-01T00:00:00Z');
const T2 = new Date('2025-01-01T00:05:00Z');

describe('setCondition', () => {
  it.each([
    {
      name: 'same status, new reason: time kept',
      next: { status: 'True' as const, reason: 'Other', message: 'm2' },
      changed: true,
      time: T1,
    },
    {
      name: 'status flips: time moves',
      next: { status: 'False' as const, reason: 'Down', message: 'm' },
      changed: true,
      time: T2,
    },
    {
      name: 'identical: nothing changes',
      next: { status: 'True' as const, reason: 'Up', message: 'm' },
      changed: false,
      time: T1,
    },
  ])('$name', ({ next, changed, time }) => {
    const status: BaseStatus = {};
    expect(setCondition(status, { type: 'A', status: 'True', reason: 'Up', message: 'm' }, 1, T1)).toBe(true);
    expect(setCondition(status, { type: 'A', ...next }, 1, T2)).toBe(changed);
    const c = getCondition(status, 'A')!;
    expect(c).toMatchObject({ ...next, observedGeneration: 1 });
    expect(c.lastTransitionTime).toBe(time.toISOString());
    expect(status.conditions).toHaveLength(1);
  });

  it('records the generation the condition was computed from', () => {
    const status: BaseStatus = {};
    setCondition(status, { type: 'A', status: 'True', reason: 'Up', message: '' }, 1, T1);
    expect(setCondition(status, { type: 'A', status: 'True', reason: 'Up', message: '' }, 2, T2)).toBe(true);
    expect(getCondition(status, 'A')).toMatchObject({
      observedGeneration: 2,
      lastTransitionTime: T1.toISOString(),
    });
  });

  it('removeCondition', () => {
    const status: BaseStatus = {};
    setCondition(status, { type: 'A', status: 'True', reason: 'Up', message: '' }, 1);
    expect(removeCondition(status, 'A')).toBe(true);
    expect(removeCondition(status, 'A')).toBe(false);
    expect(status.conditions).toEqual([]);
  });
});

describe('summariseReady', () => {
  type C = [string, 'True' | 'False' | 'Unknown', string];
  it.each<{ name: string; conds: C[]; ready: string; reason: string }>([
    {
      name: 'all true',
      conds: [
        ['A', 'True', 'Ok'],
        ['B', 'True', 'Ok'],
      ],
      ready: 'True',
      reason: 'Succeeded',
    },
    {
      name: 'first false wins',
      conds: [
        ['A', 'True', 'Ok'],
        ['B', 'False', 'BDown'],
      ],
      ready: 'False',
      reason: 'BDown',
    },
    {
      name: 'order of dependsOn decides',
      conds: [
        ['A', 'Unknown', 'AWait'],
        ['B', 'False', 'BDown'],
      ],
      ready: 'Unknown',
      reason: 'AWait',
    },
    {
      name: 'missing dependency is Unknown',
      conds: [['A', 'True', 'Ok']],
      ready: 'Unknown',
      reason: 'Progressing',
    },
    {
      name: 'Stalled wins over everything',
      conds: [
        ['A', 'True', 'Ok'],
        ['B', 'True', 'Ok'],
        ['Stalled', 'True', 'InvalidParameter'],
      ],
      ready: 'False',
      reason: 'InvalidParameter',
    },
    {
      name: 'Stalled False does not count',
      conds: [
        ['A', 'True', 'Ok'],
        ['B', 'True', 'Ok'],
        ['Stalled', 'False', 'Fine'],
      ],
      ready: 'True',
      reason: 'Succeeded',
    },
  ])('$name', ({ conds, ready, reason }) => {
    const status: BaseStatus = {};
    for (const [type, s, r] of conds)
      setCondition(status, { type, status: s, reason: r, message: `${type} says ${r}` }, 3);
    summariseReady(status, 3, { dependsOn: ['A', 'B'] });
    expect(getCondition(status, 'Ready')).toMatchObject({ status: ready, reason, observedGeneration: 3 });
  });

  it('markStalled makes the object Stalled and not Ready', () => {
    const status: BaseStatus = {};
    markStalled(status, 'DigestMismatch', 'want sha256:a, got sha256:b', 2);
    expect(getCondition(status, 'Stalled')).toMatchObject({ status: 'True', reason: 'DigestMismatch' });
    expect(getCondition(status, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'DigestMismatch',
      message: 'want sha256:a, got sha256:b',
    });
  });
});
