// A check of JSON text before JSON.parse builds anything: one linear pass that finds the first place
// nested deeper than allowed, a prototype key (`__proto__`, `constructor`, `prototype`, also when spelled
// with \u escapes), a key repeated in one object (which parsers resolve differently: JSON.parse keeps
// the last, others the first) or a number too large for a double. JSON.parse itself would build a
// million-deep array before any walk could refuse it, so depth is refused here, from the text.
// Malformed JSON is not this pass's business: it stops, and JSON.parse reports the syntax error.

import { formatFieldPath, type PathSegment } from './field-path.ts';
import { isPrototypeKey, prototypeKeyMessage } from './prototype-safety.ts';

export type JsonTextProblemReason = 'depth' | 'prototype-key' | 'duplicate-key' | 'number';

/** What is wrong and where: 1-based line and column, and the field path (`spec.ports[0]`). */
export interface JsonTextProblem {
  reason: JsonTextProblemReason;
  line: number;
  column: number;
  path: string;
  message: string;
}

interface Frame {
  array: boolean;
  /** Arrays: the index of the current item. */
  index: number;
  /** Objects: the keys seen, and the one whose value comes next. */
  keys?: Set<string>;
  key?: string;
  expectKey: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The first problem in `text`, or undefined (also when `text` is not JSON at all: JSON.parse says why). */
export function scanJsonText(text: string, maxDepth: number): JsonTextProblem | undefined {
  const stack: Frame[] = [];
  const problem = (reason: JsonTextProblemReason, at: number, segs: PathSegment[], message: string) => {
    const { line, column } = lineAndColumn(text, at);
    const path = formatFieldPath(segs);
    return { reason, line, column, path, message: `${path ? `${path}: ` : ''}${message}` };
  };
  const pathTo = (extra?: PathSegment): PathSegment[] => {
    const segs: PathSegment[] = [];
    for (const f of stack) {
      if (f.array) segs.push(f.index);
      else if (f.key !== undefined) segs.push(f.key);
    }
    if (extra !== undefined) segs.push(extra);
    return segs;
  };
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    const top = stack[stack.length - 1];
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (end < 0) return undefined;
      if (top && !top.array && top.expectKey) {
        const key = decodeKey(text.slice(i, end + 1));
        if (key === undefined) return undefined;
        // The key's own path is where it is; the parent frame must not name the previous key.
        top.key = undefined;
        if (isPrototypeKey(key)) return problem('prototype-key', i, pathTo(key), prototypeKeyMessage(key));
        if (top.keys!.has(key)) {
          return problem(
            'duplicate-key',
            i,
            pathTo(key),
            `the key ${JSON.stringify(key)} appears twice in one object; keep one`,
          );
        }
        top.keys!.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = end + 1;
      continue;
    }
    switch (c) {
      case 0x7b /* { */:
      case 0x5b /* [ */:
        {
          if (stack.length >= maxDepth) {
            return problem(
              'depth',
              i,
              pathTo(),
              `nested deeper than ${maxDepth} levels; no Xenos object needs that many`,
            );
          }
          const array = c === 0x5b;
          stack.push({ array, index: 0, keys: array ? undefined : new Set(), expectKey: !array });
          i++;
          continue;
        }
      case 0x7d /* } */:
      case 0x5d /* ] */:
        stack.pop();
        i++;
        continue;
      case 0x2c /* , */:
        if (top?.array) top.index++;
        else if (top) top.expectKey = true;
        i++;
        continue;
      default:
        break;
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let end = i + 1;
      while (end < text.length && isNumberChar(text.charCodeAt(end))) end++;
      const n = Number(text.slice(i, end));
      if (Number.isNaN(n)) return undefined;
      if (!Number.isFinite(n)) {
        return problem(
          'number',
          i,
          pathTo(),
          `the number ${abbreviate(text.slice(i, end))} is too large; numbers must fit a double (about 1.8e308)`,
        );
      }
      i = end;
      continue;
    }
    i++;
  }
  return undefined;
}

/** Index of the closing quote of the string opening at `start`, or -1 if it never closes. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    const q = text.indexOf('"', i);
    if (q < 0) return -1;
    // Count the backslashes right before the quote: an odd number escapes it.
    let b = q - 1;
    while (b > start && text.charCodeAt(b) === BACKSLASH) b--;
    if ((q - 1 - b) % 2 === 0) return q;
    i = q + 1;
  }
}

function decodeKey(raw: string): string | undefined {
  if (!raw.includes('\\')) return raw.slice(1, -1);
  try {
    return JSON.parse(raw) as string;
  } catch {
    return undefined;
  }
}

function isNumberChar(c: number): boolean {
  // digits . e E + -
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;
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
