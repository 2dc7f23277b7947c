// JSON merge patch (RFC 7386) and JSON patch (RFC 6902), with the RFCs' own examples.

import { describe, expect, it } from 'vitest';
import { JsonPatchError, jsonPatch } from '../../src/api/json-patch.ts';
import { mergePatch } from '../../src/api/merge-patch.ts';

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
