// Field ownership without a server: the FieldsV1 encoding round-trips, an update takes the fields it
// changes (and nothing when it changes nothing), and an apply shares a field set to the same value, refuses
// another value unless forced, and removes only what no one else owns.

import { describe, expect, it } from 'vitest';
import {
  applyConfig,
  fieldsOf,
  fromFieldsV1,
  recordUpdate,
  toFieldsV1,
} from '../../src/api/field-managers.ts';
import type { XObject } from '../../src/model/object.ts';

function obj(spec: Record<string, unknown>, labels?: Record<string, string>): XObject {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name: 'x', namespace: 'd', labels },
    spec,
  };
}

describe('field managers', () => {
  it('encodes fields as FieldsV1 and back; lists and empty objects are single fields', () => {
    const o = obj({ a: { b: 1, c: [1, 2] }, e: {} }, { app: 'x' });
    const fields = fieldsOf(o as never);
    expect(fields).toEqual([
      ['metadata', 'labels', 'app'],
      ['spec', 'a', 'b'],
      ['spec', 'a', 'c'],
      ['spec', 'e'],
    ]);
    const v1 = toFieldsV1(fields);
    expect(v1).toEqual({
      'f:metadata': { 'f:labels': { 'f:app': {} } },
      'f:spec': { 'f:a': { 'f:b': {}, 'f:c': {} }, 'f:e': {} },
    });
    expect(fromFieldsV1(v1)).toEqual(fields);
  });

  it('an update owns what it changed, taken from the previous owner; no change keeps the list as it is', () => {
    const created = obj({ a: 1, b: 2 });
    created.metadata.managedFields = recordUpdate(undefined, created, 'maker');
    const next = obj({ a: 1, b: 3 });
    next.metadata.managedFields = recordUpdate(created, next, 'editor');
    expect(next.metadata.managedFields?.map((m) => [m.manager, m.fieldsV1])).toEqual([
      ['maker', { 'f:spec': { 'f:a': {} } }],
      ['editor', { 'f:spec': { 'f:b': {} } }],
    ]);
    const same = { ...structuredClone(next) };
    expect(recordUpdate(next, same, 'someone')).toBe(next.metadata.managedFields);
  });

  it('an apply shares equal values, refuses others unless forced, and removes only its own leftovers', () => {
    const first = applyConfig(undefined, obj({ a: 1, b: 2 }), 'one', false);
    if (!('object' in first)) throw new Error('conflict on create');
    const shared = applyConfig(first.object, obj({ a: 1 }), 'two', false);
    expect('object' in shared).toBe(true);
    const refused = applyConfig(first.object, obj({ a: 5 }), 'two', false);
    expect(refused.conflicts).toEqual([{ manager: 'one', field: '.spec.a' }]);
    const forced = applyConfig(first.object, obj({ a: 5 }), 'two', true);
    if (!('object' in forced)) throw new Error('forced apply refused');
    expect(forced.object.spec).toEqual({ a: 5, b: 2 });
    // one applies only b now: a stays (two owns it), nothing of one's is left over.
    const shrunk = applyConfig(forced.object, obj({ b: 2 }), 'one', false);
    if (!('object' in shrunk)) throw new Error('refused');
    expect(shrunk.object.spec).toEqual({ a: 5, b: 2 });
    // two drops a: no one owns it any more, so it goes.
    const dropped = applyConfig(shrunk.object, obj({ c: 1 }), 'two', false);
    if (!('object' in dropped)) throw new Error('refused');
    expect(dropped.object.spec).toEqual({ b: 2, c: 1 });
    // An empty object applied takes nothing from inside it.
    const empty = applyConfig(dropped.object, obj({}), 'three', false);
    if (!('object' in empty)) throw new Error('refused');
    expect(empty.object.spec).toEqual({ b: 2, c: 1 });
    // The same configuration again changes nothing at all, managedFields included.
    const again = applyConfig(dropped.object, obj({ b: 2 }), 'one', false);
    if (!('object' in again)) throw new Error('refused');
    expect(again.object).toEqual(dropped.object);
  });
});
