// Multi-document YAML (and JSON, which is YAML) parsed with its source positions: every document's
// value plus a map from field path (`spec.ports[0].port`, as validation errors spell it) to the
// line and column of the field's key and of its value, so an error can point at the exact spot.
// Built on js-yaml 5's event stream, whose events carry source offsets. Hostile text is refused with
// its line and column before it costs anything: alias bombs and cycles (yaml-aliases.ts), nesting past
// MAX_NESTING_DEPTH, and prototype keys (`__proto__`, `constructor`, `prototype`) wherever they come from
// (plain, quoted or escaped keys, aliases, merge keys).

import {
  CORE_SCHEMA,
  constructFromEvents,
  EVENT_ID,
  type Event,
  getScalarValue,
  mergeTag,
  parseEvents,
  SCALAR_STYLE,
  YAMLException,
} from 'js-yaml';
import { formatFieldPath, type PathSegment } from './field-path.ts';
import { MAX_NESTING_DEPTH, MAX_YAML_ALIASES, MAX_YAML_EXPANSION_BYTES } from './input-limits.ts';
import { isPrototypeKey, prototypeKeyMessage } from './prototype-safety.ts';
import { checkAliases } from './yaml-aliases.ts';

/** 1-based line and column (and the 0-based offset) in the source text. */
export interface SourcePosition {
  line: number;
  column: number;
  offset: number;
}

export interface YamlDocument {
  /** 0-based among the non-empty documents of the text (empty ones and bare `null`s are skipped). */
  index: number;
  /** The document as plain JSON-compatible data (aliases copied, not shared). */
  value: unknown;
  /** Where the document's content starts. */
  start: SourcePosition;
  /** Field path → where its key is (for a list item, where the item starts). `''` is the root. */
  keys: Map<string, SourcePosition>;
  /** Field path → where its value starts (an alias's `*`); absent for empty values like `key:`. */
  values: Map<string, SourcePosition>;
}

export interface YamlSourceError {
  line: number;
  column: number;
  message: string;
  /** `syntax`: not YAML; `refused`: YAML this loader will not take (prototype keys, nesting, aliases);
   *  `too-large`: it would expand past its limit through aliases (a 413 on the server). */
  reason: 'syntax' | 'refused' | 'too-large';
  /** The field path, when the problem is a field's (a prototype key, nesting). */
  path?: string;
}

export interface YamlLimits {
  /** What one document may expand to through aliases (see MAX_YAML_EXPANSION_BYTES). */
  maxExpandedBytes: number;
}

const SCHEMA = CORE_SCHEMA.withTags(mergeTag);
const CLIENT_LIMITS: YamlLimits = { maxExpandedBytes: MAX_YAML_EXPANSION_BYTES.client };

/** Parses every document of `text`. A syntax error stops the parse and is the only error returned;
 *  an error while building one document (duplicate key, unknown alias, an alias bomb, a prototype
 *  key, nesting too deep) skips just that document. The default limits are the client's. */
export function parseYamlDocuments(
  text: string,
  filename?: string,
  limits: YamlLimits = CLIENT_LIMITS,
): { documents: YamlDocument[]; errors: YamlSourceError[] } {
  const lines = lineStarts(text);
  let events: Event[];
  try {
    events = parseEvents(text, { filename, maxDepth: MAX_NESTING_DEPTH });
  } catch (err) {
    return { documents: [], errors: [toSourceError(err, text, lines)] };
  }
  const documents: YamlDocument[] = [];
  const errors: YamlSourceError[] = [];
  for (const slice of splitDocuments(events)) {
    const bomb = checkAliases(slice, text, {
      maxAliases: MAX_YAML_ALIASES,
      maxExpandedBytes: limits.maxExpandedBytes,
    });
    if (bomb) {
      const at = position(bomb.offset, lines);
      const reason = bomb.tooLarge ? 'too-large' : 'refused';
      errors.push({ line: at.line, column: at.column, message: bomb.message, reason });
      continue;
    }
    let value: unknown;
    try {
      [value] = constructFromEvents(slice, {
        source: text,
        filename,
        schema: SCHEMA,
        maxAliases: MAX_YAML_ALIASES,
      });
    } catch (err) {
      errors.push(toSourceError(err, text, lines));
      continue;
    }
    if (value === null || value === undefined) continue;
    const { keys, values, start } = mapPositions(slice, text, lines);
    const doc: YamlDocument = { index: documents.length, value: undefined, start, keys, values };
    try {
      doc.value = toPlain(value, []);
    } catch (err) {
      if (!(err instanceof PlainDataError)) throw err;
      const at = locateField(doc, formatFieldPath(err.segments));
      const path = formatFieldPath(err.segments);
      errors.push({ line: at.line, column: at.column, message: err.message, reason: 'refused', path });
      continue;
    }
    documents.push(doc);
  }
  return { documents, errors };
}

/**
 * Where to point for an error at `path`: the key (`prefer: 'key'`, for unknown or missing fields) or
 * the value (for a bad value), else the other, else the nearest ancestor that is in the source, else
 * the document start.
 */
export function locateField(
  doc: YamlDocument,
  path: string,
  prefer: 'key' | 'value' = 'key',
): SourcePosition {
  const [first, second] = prefer === 'key' ? [doc.keys, doc.values] : [doc.values, doc.keys];
  const exact = first.get(path) ?? second.get(path);
  if (exact) return exact;
  // The nearest ancestor in the source stands in for a missing field: its key, where the field belongs.
  for (let p = parentPath(path); p !== undefined; p = parentPath(p)) {
    const hit = doc.keys.get(p) ?? doc.values.get(p);
    if (hit) return hit;
  }
  return doc.start;
}

/** `spec.ports[0].port` → `spec.ports[0]` → `spec.ports` → `spec` → `''` → undefined. */
export function parentPath(path: string): string | undefined {
  if (path === '') return undefined;
  if (path.endsWith(']')) return path.slice(0, path.lastIndexOf('['));
  const dot = path.lastIndexOf('.');
  const bracket = path.lastIndexOf(']');
  if (dot > bracket) return path.slice(0, dot);
  return bracket >= 0 ? path.slice(0, bracket + 1) : '';
}

/** Each document's events, from its DOCUMENT event to its closing POP. */
function splitDocuments(events: Event[]): Event[][] {
  const docs: Event[][] = [];
  let depth = 0;
  let from = 0;
  events.forEach((e, i) => {
    if (e.type === EVENT_ID.POP) {
      depth--;
      if (depth === 0) docs.push(events.slice(from, i + 1));
    } else if (e.type === EVENT_ID.DOCUMENT || e.type === EVENT_ID.MAPPING || e.type === EVENT_ID.SEQUENCE) {
      if (depth === 0) from = i;
      depth++;
    }
  });
  return docs;
}

type Frame =
  | { kind: 'doc' }
  | { kind: 'map'; segs: PathSegment[]; key?: string; keyPos?: SourcePosition }
  | { kind: 'seq'; segs: PathSegment[]; next: number }
  /** A subtree with no field path of its own: a merge (`<<`) value or a complex key. */
  | { kind: 'skip'; depth: number };

function mapPositions(events: Event[], text: string, lines: number[]) {
  const keys = new Map<string, SourcePosition>();
  const values = new Map<string, SourcePosition>();
  let start: SourcePosition | undefined;
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
    let segs: PathSegment[] = [];
    let keyPos = pos;
    if (top?.kind === 'map') {
      const key = top.key as string;
      segs = [...top.segs, key];
      keyPos = top.keyPos;
      top.key = undefined;
      if (key === '<<') {
        if (isCollection) stack.push({ kind: 'skip', depth: 1 });
        continue;
      }
    } else if (top?.kind === 'seq') {
      segs = [...top.segs, top.next++];
    }
    const path = formatFieldPath(segs);
    if (keyPos) keys.set(path, keyPos);
    if (pos) values.set(path, pos);
    if (segs.length === 0) start = pos;
    if (e.type === EVENT_ID.MAPPING) stack.push({ kind: 'map', segs });
    else if (e.type === EVENT_ID.SEQUENCE) stack.push({ kind: 'seq', segs, next: 0 });
  }
  return { keys, values, start: start ?? position(0, lines) };
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

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

function position(offset: number, lines: number[]): SourcePosition {
  let lo = 0;
  let hi = lines.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (lines[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, column: offset - lines[lo] + 1, offset };
}

function toSourceError(err: unknown, text: string, lines: number[]): YamlSourceError {
  if (err instanceof YAMLException && err.mark) {
    const at = position(Math.min(err.mark.position, text.length), lines);
    if (/maxDepth/.test(err.reason)) {
      const message = `nested deeper than ${MAX_NESTING_DEPTH} levels; no Xenos object needs that many`;
      return { line: at.line, column: at.column, message, reason: 'refused' };
    }
    return {
      line: at.line,
      column: at.column,
      message: `YAML syntax error: ${err.reason}`,
      reason: 'syntax',
    };
  }
  const message = `cannot parse: ${(err as Error).message ?? String(err)}`;
  return { line: 1, column: 1, message, reason: 'syntax' };
}

/** Why a document's value cannot be plain data, and at which field. */
class PlainDataError extends Error {
  readonly segments: PathSegment[];

  constructor(segments: PathSegment[], message: string) {
    const path = formatFieldPath(segments);
    super(`${path ? `${path}: ` : ''}${message}`);
    this.name = 'PlainDataError';
    this.segments = segments;
  }
}

/** A deep copy as plain data: aliases become copies (so defaulting one place does not change
 *  another), and non-finite numbers (`.inf`, `.nan`) become null as in JSON. Refuses prototype keys
 *  and nesting past MAX_NESTING_DEPTH (an alias can nest a node deeper than the parser saw). */
function toPlain(v: unknown, segs: PathSegment[]): unknown {
  if (Array.isArray(v) || (v !== null && typeof v === 'object')) {
    if (segs.length >= MAX_NESTING_DEPTH) {
      throw new PlainDataError(
        segs,
        `nested deeper than ${MAX_NESTING_DEPTH} levels; no Xenos object needs that many`,
      );
    }
  }
  if (Array.isArray(v)) return v.map((x, i) => toPlain(x, [...segs, i]));
  if (typeof v === 'number' && !Number.isFinite(v)) return null;
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (isPrototypeKey(k)) throw new PlainDataError([...segs, k], prototypeKeyMessage(k));
      out[k] = toPlain(x, [...segs, k]);
    }
    return out;
  }
  return v;
}
