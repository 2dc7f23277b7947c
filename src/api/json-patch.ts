// JSON patch (RFC 6902) for `application/json-patch+json`: add, remove, replace, move, copy, test
// over JSON pointers (RFC 6901). Written by hand: it is small, and the patch libraries on npm
// either mutate their input or pull in more than this needs.

import { isDeepStrictEqual } from 'node:util';

export class JsonPatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JsonPatchError';
  }
}

interface Operation {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/'))
    throw new JsonPatchError(`invalid JSON pointer ${JSON.stringify(pointer)}: must start with "/"`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function container(doc: unknown, tokens: string[], pointer: string): unknown {
  let cur = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (typeof cur === 'object' && cur !== null) cur = (cur as Record<string, unknown>)[t];
    else cur = undefined;
    if (cur === undefined) throw new JsonPatchError(`path ${JSON.stringify(pointer)} does not exist`);
  }
  return cur;
}

function arrayIndex(arr: unknown[], token: string, pointer: string, forInsert: boolean): number {
  if (forInsert && token === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token))
    throw new JsonPatchError(`invalid array index in ${JSON.stringify(pointer)}`);
  const i = Number(token);
  if (i > arr.length || (!forInsert && i === arr.length)) {
    throw new JsonPatchError(`array index out of range in ${JSON.stringify(pointer)}`);
  }
  return i;
}

function get(doc: unknown, pointer: string): unknown {
  const tokens = parsePointer(pointer);
  return container(doc, tokens, pointer);
}

function remove(doc: unknown, pointer: string): unknown {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) throw new JsonPatchError('cannot remove the whole document');
  const last = tokens.pop()!;
  const parent = container(doc, tokens, pointer);
  if (Array.isArray(parent)) {
    const i = arrayIndex(parent, last, pointer, false);
    return parent.splice(i, 1)[0];
  }
  if (typeof parent === 'object' && parent !== null && last in parent) {
    const old = (parent as Record<string, unknown>)[last];
    delete (parent as Record<string, unknown>)[last];
    return old;
  }
  throw new JsonPatchError(`path ${JSON.stringify(pointer)} does not exist`);
}

function add(doc: unknown, pointer: string, value: unknown, replace: boolean): unknown {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return value;
  const last = tokens.pop()!;
  const parent = container(doc, tokens, pointer);
  if (Array.isArray(parent)) {
    const i = arrayIndex(parent, last, pointer, !replace);
    parent.splice(i, replace ? 1 : 0, value);
  } else if (typeof parent === 'object' && parent !== null) {
    if (replace && !(last in parent))
      throw new JsonPatchError(`path ${JSON.stringify(pointer)} does not exist`);
    (parent as Record<string, unknown>)[last] = value;
  } else {
    throw new JsonPatchError(`path ${JSON.stringify(pointer)} does not exist`);
  }
  return doc;
}

/** Apply an RFC 6902 patch; returns the new document, leaves `doc` unchanged. */
export function jsonPatch(doc: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw new JsonPatchError('a JSON patch must be an array of operations');
  let out = structuredClone(doc);
  patch.forEach((raw, n) => {
    const op = raw as Operation;
    if (typeof op !== 'object' || op === null || typeof op.path !== 'string') {
      throw new JsonPatchError(`operation ${n}: needs "op" and "path"`);
    }
    switch (op.op) {
      case 'add':
        out = add(out, op.path, structuredClone(op.value), false);
        break;
      case 'remove':
        remove(out, op.path);
        break;
      case 'replace':
        out = add(out, op.path, structuredClone(op.value), true);
        break;
      case 'move': {
        if (typeof op.from !== 'string') throw new JsonPatchError(`operation ${n}: "move" needs "from"`);
        const v = remove(out, op.from);
        out = add(out, op.path, v, false);
        break;
      }
      case 'copy': {
        if (typeof op.from !== 'string') throw new JsonPatchError(`operation ${n}: "copy" needs "from"`);
        out = add(out, op.path, structuredClone(get(out, op.from)), false);
        break;
      }
      case 'test':
        if (!isDeepStrictEqual(get(out, op.path), op.value)) {
          throw new JsonPatchError(`operation ${n}: test failed at ${JSON.stringify(op.path)}`);
        }
        break;
      default:
        throw new JsonPatchError(`operation ${n}: unknown op ${JSON.stringify(op.op)}`);
    }
  });
  return out;
}
