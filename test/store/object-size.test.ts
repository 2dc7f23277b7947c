// The one object size limit (MAX_OBJECT_BYTES, src/store/limits.ts), held on what would be stored: a
// create, update, status write or dry run whose stored JSON would pass it fails with ObjectTooLargeError
// (413, naming the size and the limit) and writes nothing; an object just under it is stored. Multi-byte
// characters count as the bytes they are.

import { afterEach, describe, expect, it } from 'vitest';
import type { XObject } from '../../src/model/object.ts';
import { ObjectTooLargeError } from '../../src/store/errors.ts';
import { MAX_OBJECT_BYTES } from '../../src/store/limits.ts';
import { openStore, type SqliteStore } from '../../src/store/sqlite-store.ts';

let store: SqliteStore | undefined;
afterEach(() => store?.close());

const open = () => {
  store = openStore({ path: ':memory:', namespaced: () => true });
  return store;
};

/** An object whose stored JSON is about `bytes` long (the store adds uid, timestamps, generation). */
function sized(name: string, bytes: number, char = 'x'): XObject {
  const pad = char.repeat(Math.floor((bytes - 300) / Buffer.byteLength(char)));
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceTemplate',
    metadata: { name, namespace: 'default', annotations: { pad } },
    spec: {},
  };
}

describe('the object size limit', () => {
  it('stores an object just under the limit and refuses one just over, naming both sizes', () => {
    const s = open();
    expect(() => s.create(sized('under', MAX_OBJECT_BYTES - 1024))).not.toThrow();
    let err: unknown;
    try {
      s.create(sized('over', MAX_OBJECT_BYTES + 1024));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ObjectTooLargeError);
    const e = err as ObjectTooLargeError;
    expect([e.code, e.reason, e.limit]).toEqual([413, 'RequestEntityTooLarge', MAX_OBJECT_BYTES]);
    expect(e.bytes).toBeGreaterThan(MAX_OBJECT_BYTES);
    expect(e.message).toMatch(
      new RegExp(
        `servicetemplates "over" in namespace "default" would be ${e.bytes} bytes stored, over the limit of ${MAX_OBJECT_BYTES} bytes`,
      ),
    );
    expect(s.get({ kind: 'ServiceTemplate', namespace: 'default', name: 'over' })).toBeUndefined();
  });

  it('holds updates, status writes and dry runs to it, and leaves the stored object as it was', () => {
    const s = open();
    const small = s.create(sized('t', 2000));
    const rev = s.revision();
    const big = sized('t', MAX_OBJECT_BYTES + 1024);
    expect(() => s.update({ ...big, metadata: { ...big.metadata } })).toThrow(ObjectTooLargeError);
    expect(() =>
      s.update({ ...small, status: { phase: 'y'.repeat(MAX_OBJECT_BYTES) } }, { subresource: 'status' }),
    ).toThrow(ObjectTooLargeError);
    expect(() => s.create(sized('dry', MAX_OBJECT_BYTES + 1024), { dryRun: true })).toThrow(
      ObjectTooLargeError,
    );
    expect(s.revision()).toBe(rev);
    expect(s.get({ kind: 'ServiceTemplate', namespace: 'default', name: 't' })).toEqual(small);
  });

  it('counts UTF-8 bytes, not characters', () => {
    const s = open();
    // 'é' is two bytes: about 0.6 × the limit in characters is 1.2 × it in bytes.
    expect(() => s.create(sized('accents', Math.round(MAX_OBJECT_BYTES * 1.2), 'é'))).toThrow(
      ObjectTooLargeError,
    );
  });
});
