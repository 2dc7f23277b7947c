// JSON patch (RFC 6902) for `application/json-patch+json`: add, remove, replace, move, copy, test
// over JSON pointers (RFC 6901). Written by hand: it is small, and the patch libraries on npm
// either mutate their input or pull in more than this needs.
//
// Hostile patches: at most MAX_JSON_PATCH_OPERATIONS operations, `copy` may duplicate at most
// MAX_JSON_PATCH_COPY_BYTES in total (a chain of copies doubles a value each time), nothing may end up
// nested deeper than MAX_NESTING_DEPTH, and no pointer may name a prototype key. Pointers only ever walk and write a document's own properties (never one
// inherited from Object.prototype), so even an unchecked `/__proto__/x` could not reach the prototype.

import { isPrototypeKey, prototypeKeyMessage, setOwn } from '../model/prototype-safety.ts';
import { jsonEqual } from '../store/json-value.ts';
import { MAX_JSON_PATCH_COPY_BYTES, MAX_JSON_PATCH_OPERATIONS, MAX_NESTING_DEPTH } from './input-limits.ts';

export class JsonPatchError extends Error {
  /** The failing operation's index, when one failed. */
  readonly operation?: number;
  /** Its pointer (`path`, or `from` when that one failed). */
  readonly pointer?: string;

  constructor(message: string, at?: { operation: number; pointer?: string }) {
    super(
      at
        ? `operation ${at.operation}${at.pointer !== undefined ? ` (${JSON.stringify(at.pointer)})` : ''}: ${message}`
        : message,
    );
    this.name = 'JsonPatchError';
    this.operation = at?.operation;
    this.pointer = at?.pointer;
  }
}

/** A pointer problem, located by jsonPatch() at its operation. */
class PointerError extends Error {}

interface Operation {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

type Mapping = Record<string, unknown>;

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PointerError('a JSON pointer must start with "/"');
  return pointer
    .slice(1)
    .split('/')
    .map((t) => {
      if (/~[^01]|~$/.test(t))
        throw new PointerError('"~" must be followed by 0 or 1 (~0 is "~", ~1 is "/")');
      const token = t.replace(/~1/g, '/').replace(/~0/g, '~');
      if (isPrototypeKey(token)) throw new PointerError(prototypeKeyMessage(token));
      return token;
    });
}

/** A JSON object or array (arrays are handled before the object case wherever they differ). */
function isContainer(v: unknown): v is Mapping {
  return typeof v === 'object' && v !== null;
}

/** The value at `tokens` (own properties and array items only). */
function resolve(doc: unknown, tokens: string[]): unknown {
  let cur = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, t, false)];
    else if (isContainer(cur) && Object.hasOwn(cur, t)) cur = cur[t];
    else throw new PointerError('the path does not exist');
  }
  return cur;
}

function arrayIndex(arr: unknown[], token: string, forInsert: boolean): number {
  if (forInsert && token === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token))
    throw new PointerError(`"${token}" is not an array index (0, 1, ... or "-" to append)`);
  const i = Number(token);
  if (i > arr.length || (!forInsert && i === arr.length)) throw new PointerError('array index out of range');
  return i;
}

function remove(doc: unknown, tokens: string[]): unknown {
  if (tokens.length === 0) throw new PointerError('cannot remove the whole document');
  const last = tokens[tokens.length - 1];
  const parent = resolve(doc, tokens.slice(0, -1));
  if (Array.isArray(parent)) return parent.splice(arrayIndex(parent, last, false), 1)[0];
  if (isContainer(parent) && Object.hasOwn(parent, last)) {
    const old = parent[last];
    delete parent[last];
    return old;
  }
  throw new PointerError('the path does not exist');
}

function add(doc: unknown, tokens: string[], value: unknown, replace: boolean): unknown {
  if (tokens.length === 0) return value;
  const last = tokens[tokens.length - 1];
  const parent = resolve(doc, tokens.slice(0, -1));
  if (Array.isArray(parent)) {
    parent.splice(arrayIndex(parent, last, !replace), replace ? 1 : 0, value);
  } else if (isContainer(parent)) {
    if (replace && !Object.hasOwn(parent, last)) throw new PointerError('the path does not exist');
    setOwn(parent, last, value);
  } else {
    throw new PointerError('the path does not exist');
  }
  return doc;
}

/** About the size of `v` as JSON and how deep it nests, walked without recursion and only until the
 *  size passes `budget` (so a huge value costs `budget`, and a deep one no stack). */
export function measureJson(v: unknown, budget = Number.POSITIVE_INFINITY): { size: number; depth: number } {
  let size = 0;
  let depth = 0;
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length > 0 && size <= budget) {
    const [x, d] = stack.pop()!;
    if (typeof x === 'string') size += x.length + 2;
    else if (isContainer(x)) {
      depth = Math.max(depth, d + 1);
      size += 2;
      if (Array.isArray(x)) {
        size += x.length;
        for (const item of x) stack.push([item, d + 1]);
      } else {
        for (const [k, item] of Object.entries(x)) {
          size += k.length + 4;
          stack.push([item, d + 1]);
        }
      }
    } else size += String(x).length;
  }
  return { size, depth };
}

/** Refuses a value that would sit nested deeper than MAX_NESTING_DEPTH at `tokens`. */
function checkDepth(tokens: string[], valueDepth: number): void {
  if (tokens.length + valueDepth > MAX_NESTING_DEPTH) {
    throw new PointerError(`the value would be nested deeper than ${MAX_NESTING_DEPTH} levels`);
  }
}

/** Apply an RFC 6902 patch; returns the new document, leaves `doc` unchanged. */
export function jsonPatch(doc: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw new JsonPatchError('a JSON patch must be an array of operations');
  if (patch.length > MAX_JSON_PATCH_OPERATIONS) {
    throw new JsonPatchError(
      `the patch has ${patch.length} operations; at most ${MAX_JSON_PATCH_OPERATIONS} are taken in one request`,
    );
  }
  let out = structuredClone(doc);
  let copied = 0;
  patch.forEach((raw, n) => {
    const op = raw as Operation;
    if (typeof op !== 'object' || op === null || typeof op.path !== 'string') {
      throw new JsonPatchError('needs "op" and "path"', { operation: n });
    }
    let pointer = op.path;
    const tokensOf = (p: unknown, field: 'path' | 'from'): string[] => {
      if (typeof p !== 'string') throw new JsonPatchError(`"${op.op}" needs "${field}"`, { operation: n });
      pointer = p;
      return parsePointer(p);
    };
    try {
      switch (op.op) {
        case 'add':
        case 'replace': {
          if (!Object.hasOwn(op, 'value')) throw new PointerError(`"${op.op}" needs "value"`);
          const to = tokensOf(op.path, 'path');
          checkDepth(to, measureJson(op.value).depth);
          out = add(out, to, structuredClone(op.value), op.op === 'replace');
          break;
        }
        case 'remove':
          remove(out, tokensOf(op.path, 'path'));
          break;
        case 'move': {
          const to = tokensOf(op.path, 'path');
          const from = tokensOf(op.from, 'from');
          if (to.length > from.length && from.every((t, i) => t === to[i]))
            throw new PointerError('cannot move a value into itself');
          // Moving deeper can nest too deep; the whole document is measured once at the end.
          const v = remove(out, from);
          pointer = op.path;
          out = add(out, to, v, false);
          break;
        }
        case 'copy': {
          const to = tokensOf(op.path, 'path');
          const value = resolve(out, tokensOf(op.from, 'from'));
          const measured = measureJson(value, MAX_JSON_PATCH_COPY_BYTES - copied);
          copied += measured.size;
          if (copied > MAX_JSON_PATCH_COPY_BYTES) {
            throw new PointerError(
              `copy operations would duplicate more than ${MAX_JSON_PATCH_COPY_BYTES} bytes in this patch (the limit)`,
            );
          }
          pointer = op.path;
          checkDepth(to, measured.depth);
          out = add(out, to, structuredClone(value), false);
          break;
        }
        case 'test':
          if (!jsonEqual(resolve(out, tokensOf(op.path, 'path')), op.value)) {
            throw new PointerError('test failed: the value is different');
          }
          break;
        default:
          throw new JsonPatchError(`unknown op ${JSON.stringify(op.op)}`, { operation: n });
      }
    } catch (err) {
      if (err instanceof PointerError) throw new JsonPatchError(err.message, { operation: n, pointer });
      throw err;
    }
  });
  if (measureJson(out).depth > MAX_NESTING_DEPTH) {
    throw new JsonPatchError(`the patched object would be nested deeper than ${MAX_NESTING_DEPTH} levels`);
  }
  return out;
}
