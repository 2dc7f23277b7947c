// JSON merge patch (RFC 7386) and JSON patch (RFC 6902), with the RFCs' own examples.

import { describe, expect, it } from 'vitest';
import { JsonPatchError, jsonPatch } from '../../src/api/json-patch.ts';
import { MergePatchError, mergePatch } from '../../src/api/merge-patch.ts';

describe('merge patch', () => {
  it('follows the RFC 7386 example', () => {
    const target = {
      title: 'Goodbye!',
      author: { givenName: 'John', familyName: 'Doe' },
      tags: ['example', 'sample'],
      content: 'x',
    };
    const patch = {
      title: 'Hello!',
      phoneNumber: '+01-123-456-7890',
      author: { familyName: null },
      tags: ['example'],
    };
    expect(mergePatch(target, patch)).toEqual({
      title: 'Hello!',
      author: { givenName: 'John' },
      tags: ['example'],
      content: 'x',
      phoneNumber: '+01-123-456-7890',
    });
    expect(target.author.familyName).toBe('Doe'); // input untouched
  });

  it('replaces non-objects', () => {
    expect(mergePatch({ a: 1 }, ['x'])).toEqual(['x']);
    expect(mergePatch('s', { a: { b: null, c: 1 } })).toEqual({ a: { c: 1 } });
  });
});

describe('json patch', () => {
  const doc = { a: { b: [1, 2] }, c: 'x' };

  it('adds, removes, replaces, moves, copies and tests', () => {
    const out = jsonPatch(doc, [
      { op: 'add', path: '/a/b/-', value: 3 },
      { op: 'add', path: '/a/b/0', value: 0 },
      { op: 'remove', path: '/c' },
      { op: 'replace', path: '/a/b/1', value: 10 },
      { op: 'copy', from: '/a/b', path: '/d' },
      { op: 'move', from: '/d', path: '/e~1f' },
      { op: 'test', path: '/a/b', value: [0, 10, 2, 3] },
    ]);
    expect(out).toEqual({ a: { b: [0, 10, 2, 3] }, 'e/f': [0, 10, 2, 3] });
    expect(doc).toEqual({ a: { b: [1, 2] }, c: 'x' });
  });

  it.each([
    [[{ op: 'remove', path: '/nope' }], /does not exist/],
    [[{ op: 'replace', path: '/a/zz', value: 1 }], /does not exist/],
    [[{ op: 'add', path: '/a/b/9', value: 1 }], /out of range/],
    [[{ op: 'test', path: '/c', value: 'y' }], /test failed/],
    [[{ op: 'frob', path: '/c' }], /unknown op/],
    [{ op: 'add' }, /must be an array/],
  ])('rejects %j', (patch, message) => {
    expect(() => jsonPatch(doc, patch)).toThrow(JsonPatchError);
    expect(() => jsonPatch(doc, patch)).toThrow(message as RegExp);
  });
});

describe('hostile patches', () => {
  const doc = { metadata: { name: 'x', labels: { a: 'b' } }, spec: { list: [1, 2] } };
  const untouched = () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('polluted');
  };

  it.each([
    '/__proto__/polluted',
    '/metadata/__proto__/polluted',
    '/constructor/prototype/polluted',
    '/metadata/labels/constructor',
    '/spec/list/prototype',
  ])('refuses the pointer %s, naming the key, and writes nothing anywhere', (path) => {
    for (const op of ['add', 'replace']) {
      expect(() => jsonPatch(doc, [{ op, path, value: 'yes' }])).toThrow(/operation 0 .*is not allowed/);
    }
    expect(() => jsonPatch(doc, [{ op: 'copy', from: path, path: '/x' }])).toThrow(/is not allowed/);
    expect(() => jsonPatch(doc, [{ op: 'move', from: '/metadata/name', path }])).toThrow(/is not allowed/);
    untouched();
  });

  it('walks only own properties: a pointer through an inherited name does not exist', () => {
    // toString, hasOwnProperty… live on Object.prototype, not in the document.
    expect(() => jsonPatch(doc, [{ op: 'add', path: '/toString/x', value: 1 }])).toThrow(/does not exist/);
    expect(() => jsonPatch(doc, [{ op: 'remove', path: '/hasOwnProperty' }])).toThrow(/does not exist/);
    expect(() => jsonPatch(doc, [{ op: 'replace', path: '/valueOf', value: 1 }])).toThrow(/does not exist/);
    expect(() => jsonPatch(doc, [{ op: 'test', path: '/spec/list/length', value: 2 }])).toThrow(
      /not an array index/,
    );
    untouched();
  });

  it('takes only strict array indices and valid ~ escapes', () => {
    for (const path of ['/spec/list/01', '/spec/list/1e0', '/spec/list/-1', '/spec/list/ 1']) {
      expect(() => jsonPatch(doc, [{ op: 'replace', path, value: 0 }])).toThrow(/not an array index/);
    }
    expect(() => jsonPatch(doc, [{ op: 'add', path: '/metadata/~2', value: 0 }])).toThrow(/~0 is "~"/);
    expect(() => jsonPatch(doc, [{ op: 'add', path: '/metadata/a~', value: 0 }])).toThrow(/~0 is "~"/);
    // ~01 is "~1", not "/": the escapes are decoded in RFC 6901's order.
    expect(jsonPatch(doc, [{ op: 'add', path: '/metadata/labels/x~01', value: 'v' }])).toMatchObject({
      metadata: { labels: { 'x~1': 'v' } },
    });
  });

  it('caps the operations and the bytes that copy may duplicate', () => {
    const many = Array.from({ length: 10_001 }, () => ({ op: 'test', path: '/metadata/name', value: 'x' }));
    expect(() => jsonPatch(doc, many)).toThrow(/10001 operations; at most 10000/);
    // Each copy doubles the list: 2^n items after n copies, refused long before memory notices.
    const doubling: unknown[] = [{ op: 'add', path: '/a', value: ['0123456789'.repeat(10)] }];
    for (let i = 0; i < 40; i++) doubling.push({ op: 'copy', from: '/a', path: `/a/-` });
    expect(() => jsonPatch({}, doubling)).toThrow(
      /operation 1\d \("\/a"\): copy operations would duplicate more than \d+ bytes/,
    );
  });

  it('refuses a value that would nest deeper than the limit, however it gets there', () => {
    const deep = (n: number): unknown => (n === 0 ? 'leaf' : { d: deep(n - 1) });
    const path60 = `/${Array(60).fill('d').join('/')}`;
    const start = deep(61);
    expect(() => jsonPatch(start, [{ op: 'add', path: path60, value: deep(50) }])).toThrow(
      /nested deeper than 100 levels/,
    );
    expect(() => jsonPatch(start, [{ op: 'copy', from: '', path: path60 }])).toThrow(/deeper than 100/);
    expect(() => jsonPatch(start, [{ op: 'move', from: '/d', path: '/x' }])).not.toThrow();
  });

  it('refuses moving a value into itself', () => {
    expect(() => jsonPatch(doc, [{ op: 'move', from: '/metadata', path: '/metadata/inner' }])).toThrow(
      /into itself/,
    );
  });
});

describe('hostile merge patches', () => {
  it('refuses prototype keys at any depth with the field path, and pollutes nothing', () => {
    const attacks = [
      [JSON.parse('{"__proto__": {"polluted": 1}}'), '__proto__'],
      [JSON.parse('{"metadata": {"labels": {"__proto__": {"polluted": 1}}}}'), 'metadata.labels.__proto__'],
      [{ spec: { constructor: { prototype: { polluted: 1 } } } }, 'spec.constructor'],
      [{ spec: { prototype: 1 } }, 'spec.prototype'],
    ] as const;
    for (const [patch, path] of attacks) {
      expect(() => mergePatch({ spec: {} }, patch)).toThrow(MergePatchError);
      expect(() => mergePatch({ spec: {} }, patch)).toThrow(`${path}: the key`);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('keeps a target key named like an inherited property as data', () => {
    // `toString` is inherited by every object: the merge must see the target's own key only.
    expect(mergePatch({}, { toString: { a: 1 } })).toEqual({ toString: { a: 1 } });
    expect(mergePatch({ valueOf: 1 }, { valueOf: null })).toEqual({});
  });
});
