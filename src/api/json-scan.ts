// A check of JSON text before JSON.parse builds anything: one linear pass over RFC 8259's grammar that
// finds the first syntax error, nesting deeper than allowed, a prototype key (`__proto__`,
// `constructor`, `prototype`, also when spelled with \u escapes), a key repeated in one object (which
// parsers resolve differently: JSON.parse keeps the last, others the first) or a number too large for a
// double — each with its line, column and field path. JSON.parse itself would build a million-deep array
// before any walk could refuse it, and its own syntax errors do not always say where.

import { isPrototypeKey, prototypeKeyMessage } from '../model/prototype-safety.ts';
import { appendFieldPath } from './field-path.ts';

export type JsonTextProblemReason = 'syntax' | 'depth' | 'prototype-key' | 'duplicate-key' | 'number';

/** What is wrong and where: 1-based line and column, and the field path (`spec.ports[0]`). */
export interface JsonTextProblem {
  reason: JsonTextProblemReason;
  line: number;
  column: number;
  path: string;
  /** The field path (if any) and what is wrong. */
  message: string;
}

interface Frame {
  array: boolean;
  /** The path of this container. */
  path: string;
  /** Arrays: the index of the next item. */
  index: number;
  /** Objects: the keys seen so far. */
  keys?: Set<string>;
}

/** What the scanner expects next. */
type Expect = 'value' | 'value-or-close' | 'key' | 'key-or-close' | 'colon' | 'after-value' | 'end';

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON forbids raw control characters in strings; this finds them.
const CONTROL = /[\u0000-\u001f]/;
/** A backslash that escapes nothing JSON knows: the last of an odd run of backslashes. */
const BAD_ESCAPE = /(?:^|[^\\])(?:\\\\)*\\(?!["\\/bfnrt]|u[0-9a-fA-F]{4})/;

/** The first problem in `text`, or undefined when it is JSON this API takes. */
export function scanJsonText(text: string, maxDepth: number): JsonTextProblem | undefined {
  const stack: Frame[] = [];
  let expect = 'value' as Expect;
  /** The key whose value comes next (objects). */
  let key = '';
  let i = 0;
  const problem = (reason: JsonTextProblemReason, at: number, path: string, message: string) => {
    const { line, column } = lineAndColumn(text, at);
    return { reason, line, column, path, message: `${path ? `${path}: ` : ''}${message}` };
  };
  const found = (at: number) =>
    at >= text.length
      ? 'the end of the body'
      : JSON.stringify(text.slice(at, at + 12).split(/\s/)[0] || text[at]);
  const syntax = (at: number, wanted: string) =>
    problem('syntax', at, '', `expected ${wanted}, found ${found(at)}`);
  /** The path of the value about to be read. */
  const valuePath = () => {
    const top = stack[stack.length - 1];
    if (!top) return '';
    return top.array ? appendFieldPath(top.path, top.index) : appendFieldPath(top.path, key);
  };
  const afterValue = () => {
    const top = stack[stack.length - 1];
    if (top?.array) top.index++;
    expect = top ? 'after-value' : 'end';
  };

  for (;;) {
    while (i < text.length && isSpace(text.charCodeAt(i))) i++;
    if (i >= text.length) {
      return expect === 'end' ? undefined : syntax(i, describeExpect(expect, stack));
    }
    const c = text[i];
    switch (expect) {
      case 'end':
        return syntax(i, 'the end of the body after the value');
      case 'colon':
        if (c !== ':') return syntax(i, `":" after the key ${JSON.stringify(key)}`);
        i++;
        expect = 'value';
        continue;
      case 'after-value': {
        const top = stack[stack.length - 1];
        if (c === ',') {
          i++;
          expect = top.array ? 'value' : 'key';
          continue;
        }
        if (c === (top.array ? ']' : '}')) {
          i++;
          stack.pop();
          afterValue();
          continue;
        }
        return syntax(i, top.array ? '"," or "]" after an item' : '"," or "}" after a value');
      }
      case 'key':
      case 'key-or-close': {
        if (c === '}' && expect === 'key-or-close') {
          i++;
          stack.pop();
          afterValue();
          continue;
        }
        if (c !== '"') return syntax(i, 'a double-quoted key');
        const end = stringEnd(text, i);
        if (end < 0) return problem('syntax', i, '', 'a string that never ends');
        const bad = badString(text, i, end);
        if (bad) return problem('syntax', bad.at, '', bad.message);
        const top = stack[stack.length - 1];
        key = decodeString(text.slice(i, end + 1));
        const path = appendFieldPath(top.path, key);
        if (isPrototypeKey(key)) return problem('prototype-key', i, path, prototypeKeyMessage(key));
        if (top.keys!.has(key))
          return problem(
            'duplicate-key',
            i,
            path,
            `the key ${JSON.stringify(key)} appears twice in one object; keep one`,
          );
        top.keys!.add(key);
        i = end + 1;
        expect = 'colon';
        continue;
      }
      case 'value':
      case 'value-or-close': {
        if (c === ']' && expect === 'value-or-close') {
          i++;
          stack.pop();
          afterValue();
          continue;
        }
        if (c === '{' || c === '[') {
          const path = valuePath();
          if (stack.length >= maxDepth) {
            return problem(
              'depth',
              i,
              path,
              `nested deeper than ${maxDepth} levels; no Xenos object needs that many`,
            );
          }
          const array = c === '[';
          stack.push({ array, path, index: 0, keys: array ? undefined : new Set() });
          expect = array ? 'value-or-close' : 'key-or-close';
          i++;
          continue;
        }
        if (c === '"') {
          const end = stringEnd(text, i);
          if (end < 0) return problem('syntax', i, valuePath(), 'a string that never ends');
          const bad = badString(text, i, end);
          if (bad) return problem('syntax', bad.at, valuePath(), bad.message);
          i = end + 1;
          afterValue();
          continue;
        }
        const literal = c === 't' ? 'true' : c === 'f' ? 'false' : c === 'n' ? 'null' : undefined;
        if (literal && text.startsWith(literal, i)) {
          i += literal.length;
          afterValue();
          continue;
        }
        NUMBER.lastIndex = i;
        const m = NUMBER.exec(text);
        if (!m) return syntax(i, 'a value (an object, list, string, number, true, false or null)');
        if (!Number.isFinite(Number(m[0]))) {
          return problem(
            'number',
            i,
            valuePath(),
            `the number ${abbreviate(m[0])} is too large; numbers must fit a double (about 1.8e308)`,
          );
        }
        i += m[0].length;
        afterValue();
      }
    }
  }
}

function describeExpect(expect: Expect, stack: Frame[]): string {
  if (expect === 'colon') return '":"';
  if (expect === 'after-value') return stack[stack.length - 1].array ? '"," or "]"' : '"," or "}"';
  if (expect === 'key' || expect === 'key-or-close') return 'a double-quoted key';
  return 'a value';
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Index of the closing quote of the string opening at `start`, or -1 if it never closes. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    const q = text.indexOf('"', i);
    if (q < 0) return -1;
    // Count the backslashes right before the quote: an odd number escapes it.
    let b = q - 1;
    while (b > start && text.charCodeAt(b) === 0x5c) b--;
    if ((q - 1 - b) % 2 === 0) return q;
    i = q + 1;
  }
}

/** A raw control character or an escape JSON does not have, inside the string start..end. */
function badString(text: string, start: number, end: number): { at: number; message: string } | undefined {
  const body = text.slice(start + 1, end);
  const control = CONTROL.exec(body);
  if (control)
    return { at: start + 1 + control.index, message: 'a control character inside a string; escape it' };
  const badEscape = BAD_ESCAPE.exec(body);
  if (badEscape)
    return {
      at: start + badEscape.index + badEscape[0].length,
      message: 'an escape JSON does not have (use \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)',
    };
  return undefined;
}

function decodeString(raw: string): string {
  return raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
}

function abbreviate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 20)}…${s.slice(-10)} (${s.length} characters)` : s;
}

/** 1-based line and column of `offset`. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}
