// The source map of one YAML document: from its parser events, each field path (`spec.ports[0].port`,
// as validation errors spell it) to the line and column of its key and of its value. Built only when an
// error needs a position (yaml-source.ts asks lazily), and with one string per node, so a large
// document costs little when nothing is wrong with it.

import { EVENT_ID, type Event, getScalarValue, SCALAR_STYLE } from 'js-yaml';
import { appendFieldPath } from './field-path.ts';

/** 1-based line and column (and the 0-based offset) in the source text. */
export interface SourcePosition {
  line: number;
  column: number;
  offset: number;
}

export interface PositionMap {
  /** Field path → where its key is (for a list item, where the item starts). `''` is the root. */
  keys: Map<string, SourcePosition>;
  /** Field path → where its value starts (an alias's `*`); absent for empty values like `key:`. */
  values: Map<string, SourcePosition>;
}

type Frame =
  | { kind: 'doc' }
  | { kind: 'map'; path: string; key?: string; keyPos?: SourcePosition }
  | { kind: 'seq'; path: string; next: number }
  /** A subtree with no field path of its own: a merge (`<<`) value or a complex key. */
  | { kind: 'skip'; depth: number };

/** The positions of every field of one document (its events, from DOCUMENT to the closing POP). */
export function mapPositions(events: readonly Event[], text: string, lines: number[]): PositionMap {
  const keys = new Map<string, SourcePosition>();
  const values = new Map<string, SourcePosition>();
  const stack: Frame[] = [];
  for (const e of events) {
    const top = stack[stack.length - 1];
    if (e.type === EVENT_ID.DOCUMENT) {
      stack.push({ kind: 'doc' });
      continue;
    }
    if (e.type === EVENT_ID.POP) {
      if (top?.kind === 'skip' && top.depth > 1) top.depth--;
      else stack.pop();
      continue;
    }
    const isCollection = e.type === EVENT_ID.MAPPING || e.type === EVENT_ID.SEQUENCE;
    if (top?.kind === 'skip') {
      if (isCollection) top.depth++;
      continue;
    }
    const offset = nodeOffset(e);
    const pos = offset >= 0 ? position(offset, lines) : undefined;
    if (top?.kind === 'map' && top.key === undefined) {
      // A key. Scalar keys name a field; a collection used as a key has no field path.
      top.key = e.type === EVENT_ID.SCALAR ? getScalarValue(text, e) : '[complex key]';
      top.keyPos = pos;
      if (isCollection) stack.push({ kind: 'skip', depth: 1 });
      continue;
    }
    let path = '';
    let keyPos = pos;
    if (top?.kind === 'map') {
      const key = top.key as string;
      path = appendFieldPath(top.path, key);
      keyPos = top.keyPos;
      top.key = undefined;
      if (key === '<<') {
        if (isCollection) stack.push({ kind: 'skip', depth: 1 });
        continue;
      }
    } else if (top?.kind === 'seq') {
      path = appendFieldPath(top.path, top.next++);
    }
    if (keyPos) keys.set(path, keyPos);
    if (pos) values.set(path, pos);
    if (e.type === EVENT_ID.MAPPING) stack.push({ kind: 'map', path });
    else if (e.type === EVENT_ID.SEQUENCE) stack.push({ kind: 'seq', path, next: 0 });
  }
  return { keys, values };
}

/** Where a document's content starts: its first node, else the text's start. */
export function documentStart(events: readonly Event[], lines: number[]): SourcePosition {
  for (const e of events) {
    const offset = nodeOffset(e);
    if (offset >= 0) return position(offset, lines);
  }
  return position(0, lines);
}

/** Where a node's text starts: the opening quote of a quoted scalar, the `*` of an alias. */
function nodeOffset(e: Event): number {
  switch (e.type) {
    case EVENT_ID.SCALAR:
      if (e.valueStart < 0) return -1;
      return e.style === SCALAR_STYLE.SINGLE_QUOTED || e.style === SCALAR_STYLE.DOUBLE_QUOTED
        ? e.valueStart - 1
        : e.valueStart;
    case EVENT_ID.MAPPING:
    case EVENT_ID.SEQUENCE:
      return e.start;
    case EVENT_ID.ALIAS:
      return e.anchorStart - 1;
    default:
      return -1;
  }
}

/** The offset each line starts at, for position(). */
export function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

export function position(offset: number, lines: number[]): SourcePosition {
  let lo = 0;
  let hi = lines.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (lines[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, column: offset - lines[lo] + 1, offset };
}
