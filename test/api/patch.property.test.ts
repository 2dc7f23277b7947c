// Property tests of the patch code: JSON patch (RFC 6902), merge patch (RFC 7386), the client's
// three-way patch and server-side apply (a merge of the applied configuration). For any document and
// any patch, including pointers with escapes, prototype keys, odd array indices and copy chains: the
// result is a new document or a JsonPatchError / MergePatchError naming the operation or field; the
// input is never changed; Object.prototype never changes; nothing hangs. Algebra: add-then-remove
// restores, add-then-test passes, a merge patch applied twice is applied once (apply is idempotent),
// and the merge patch of a diff (threeWayPatch) takes the source to the target.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonPatchError, jsonPatch } from '../../src/api/json-patch.ts';
import { MergePatchError, mergePatch } from '../../src/api/merge-patch.ts';
import { threeWayPatch } from '../../src/client/three-way-patch.ts';
import type { XObject } from '../../src/model/object.ts';
import {
  bounded,
  FUZZ_TEST_TIMEOUT_MS,
  fuzz,
  HOSTILE_KEYS,
  hasPrototypeKey,
  jsonArb,
  keyArb,
  prototypeSnapshot,
} from '../fuzz.ts';

const objectArb = fc.dictionary(keyArb, jsonArb(3), { maxKeys: 5, noNullPrototype: true });

/** A pointer token: ordinary keys, indices (good and bad), escapes, prototype names. */
const tokenArb = fc.oneof(
  keyArb,
  fc.constantFrom(
    '0',
    '1',
    '2',
    '-',
    '01',
    '1e0',
    '-1',
    ' 1',
    '99999999999999999999',
    '~0',
    '~1',
    '~2',
    'a~',
    '~01',
    ...HOSTILE_KEYS,
  ),
);
const pointerArb = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom('', '/', 'a', '//') },
  { weight: 6, arbitrary: fc.array(tokenArb, { minLength: 1, maxLength: 4 }).map((t) => `/${t.join('/')}`) },
);
const opArb = fc.record(
  {
    op: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test') },
      fc.constant('frob'),
    ),
    path: pointerArb,
    from: pointerArb,
    value: jsonArb(3),
  },
  { requiredKeys: ['op', 'path'] },
);
/** Mostly arrays of operations; sometimes not an array at all, or ops without the fields they need. */
const patchArb = fc.oneof({ weight: 9, arbitrary: fc.array(opArb, { maxLength: 8 }) }, jsonArb(2));

describe('JSON patch property', () => {
  it(
    'any patch on any document: a new document or a located JsonPatchError; input and prototype untouched',
    () => {
      fc.assert(
        fc.property(jsonArb(4), patchArb, (doc, patch) => {
          const before = JSON.stringify(doc);
          const proto = prototypeSnapshot();
          try {
            bounded('jsonPatch', () => jsonPatch(doc, patch));
          } catch (err) {
            if (!(err instanceof JsonPatchError)) throw err;
            // Located: an operation (and its pointer), or the patch as a whole.
            const whole = /must be an array|operations; at most|patched object would be nested/.test(
              err.message,
            );
            expect(
              whole || (err.operation !== undefined && err.message.startsWith(`operation ${err.operation}`)),
            ).toBe(true);
          }
          expect(JSON.stringify(doc)).toBe(before);
          expect(prototypeSnapshot()).toBe(proto);
          expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        }),
        fuzz(1000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'a pointer naming a prototype key is always refused, whatever the operation',
    () => {
      fc.assert(
        fc.property(
          objectArb,
          fc.constantFrom('__proto__', 'constructor', 'prototype'),
          fc.constantFrom('add', 'replace', 'remove', 'test', 'copy', 'move'),
          jsonArb(2),
          (doc, key, op, value) => {
            const path = `/${key}/polluted`;
            const ops =
              op === 'copy' || op === 'move' ? [{ op, from: path, path: '/x' }] : [{ op, path, value }];
            expect(() => jsonPatch(doc, ops)).toThrow(`the key "${key}" is not allowed`);
          },
        ),
        fuzz(300),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'algebra: add then remove restores the document; add then test passes; copy then test passes',
    () => {
      fc.assert(
        fc.property(objectArb, jsonArb(3), (doc, value) => {
          fc.pre(!hasPrototypeKey(doc) && !hasPrototypeKey(value) && !Object.hasOwn(doc, 'fresh'));
          expect(
            jsonPatch(doc, [
              { op: 'add', path: '/fresh', value },
              { op: 'remove', path: '/fresh' },
            ]),
          ).toEqual(doc);
          expect(() =>
            jsonPatch(doc, [
              { op: 'add', path: '/fresh', value },
              { op: 'test', path: '/fresh', value },
            ]),
          ).not.toThrow();
          expect(
            jsonPatch({ ...doc, fresh: value }, [
              { op: 'copy', from: '/fresh', path: '/copy' },
              { op: 'test', path: '/copy', value },
            ]),
          ).toEqual({ ...doc, fresh: value, copy: value });
        }),
        fuzz(300),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );
});

describe('merge patch property', () => {
  it(
    'any patch on any target: a result without prototype keys, or a MergePatchError naming the field',
    () => {
      fc.assert(
        fc.property(jsonArb(4), jsonArb(4), (target, patch) => {
          const before = [JSON.stringify(target), JSON.stringify(patch)];
          const proto = prototypeSnapshot();
          let result: unknown;
          try {
            result = bounded('mergePatch', () => mergePatch(target, patch));
          } catch (err) {
            if (!(err instanceof MergePatchError)) throw err;
            expect(err.path).toMatch(/(^|[.\]])(__proto__|constructor|prototype)$/);
            expect(hasPrototypeKey(patch)).toBe(true);
            return;
          }
          // What the patch brings in is checked; the target's own keys are kept as they were.
          if (!hasPrototypeKey(target)) expect(hasPrototypeKey(result)).toBe(false);
          expect(hasPrototypeKey(patch)).toBe(false);
          expect([JSON.stringify(target), JSON.stringify(patch)]).toEqual(before);
          expect(prototypeSnapshot()).toBe(proto);
        }),
        fuzz(1000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'applying a merge patch (or a server-side apply) twice is applying it once',
    () => {
      fc.assert(
        fc.property(objectArb, objectArb, (target, patch) => {
          fc.pre(!hasPrototypeKey(patch));
          const once = mergePatch(target, patch);
          expect(mergePatch(once, patch)).toEqual(once);
        }),
        fuzz(500),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'the merge patch of a diff (threeWayPatch) takes the source to the target',
    () => {
      /** JSON without null (a merge patch cannot set a null) and without prototype keys. */
      const noNull = jsonArb(3).map((v) => JSON.parse(JSON.stringify(v, (_k, x) => (x === null ? 0 : x))));
      const objectOf = fc
        .dictionary(fc.stringMatching(/^[a-z]{1,4}$/), noNull, { maxKeys: 4, noNullPrototype: true })
        .filter((o) => !hasPrototypeKey(o));
      const xobject = (spec: Record<string, unknown>, extra: Record<string, unknown>) =>
        ({
          apiVersion: 'xenos.io/v1alpha1',
          kind: 'ServiceTemplate',
          metadata: { name: 'x' },
          spec,
          ...extra,
        }) as XObject;
      fc.assert(
        fc.property(objectOf, objectOf, objectOf, objectOf, (srcSpec, tgtSpec, srcExtra, tgtExtra) => {
          const source = xobject(srcSpec, srcExtra);
          const target = xobject(tgtSpec, tgtExtra);
          fc.pre(!('status' in srcExtra) && !('status' in tgtExtra));
          const patch = threeWayPatch(source, target, source) ?? {};
          expect(mergePatch(source, patch)).toEqual(JSON.parse(JSON.stringify(target)));
        }),
        fuzz(500),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );
});
