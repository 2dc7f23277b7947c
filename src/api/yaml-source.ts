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
  mergeTag,
  parseEvents,
  YAMLException,
} from 'js-yaml';
import { isPrototypeKey, prototypeKeyMessage } from '../model/prototype-safety.ts';
import { formatFieldPath, type PathSegment } from './field-path.ts';
import { MAX_NESTING_DEPTH, MAX_YAML_ALIASES, MAX_YAML_EXPANSION_BYTES } from './input-limits.ts';
import { checkAliases } from './yaml-aliases.ts';
import {
  documentStart,
  lineStarts,
  mapPositions,
  type PositionMap,
  position,
  type SourcePosition,
} from './yaml-positions.ts';

export type { SourcePosition } from './yaml-positions.ts';

export interface YamlDocument {
  /** 0-based among the non-empty documents of the text (empty ones and bare `null`s are skipped). */
  index: number;
  /** The document as plain JSON-compatible data (aliases copied, not shared). */
  value: unknown;
  /** Where the document's content starts. */
  start: SourcePosition;
  /** Field path → where its key is (for a list item, where the item starts). `''` is the root.
   *  Built on first use: a document nothing is wrong with never needs it. */
  readonly keys: Map<string, SourcePosition>;
  /** Field path → where its value starts (an alias's `*`); absent for empty values like `key:`. */
  readonly values: Map<string, SourcePosition>;
}

/** A YamlDocument whose source map is built when first asked for. */
class ParsedDocument implements YamlDocument {
  readonly index: number;
  value: unknown;
  readonly start: SourcePosition;
  readonly #source: { events: readonly Event[]; text: string; lines: number[] };
  #positions?: PositionMap;

  constructor(index: number, events: readonly Event[], text: string, lines: number[]) {
    this.index = index;
    this.start = documentStart(events, lines);
    this.#source = { events, text, lines };
  }

  get keys(): Map<string, SourcePosition> {
    return this.#map().keys;
  }

  get values(): Map<string, SourcePosition> {
    return this.#map().values;
  }

  #map(): PositionMap {
    const { events, text, lines } = this.#source;
    this.#positions ??= mapPositions(events, text, lines);
    return this.#positions;
  }
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
    const doc = new ParsedDocument(documents.length, slice, text, lines);
    try {
      doc.value = toPlain(value, []);
    } catch (err) {
      if (!(err instanceof PlainDataError)) throw err;
      const at = locateField(doc, err.path, err.at);
      errors.push({
        line: at.line,
        column: at.column,
        message: err.message,
        reason: 'refused',
        path: err.path,
      });
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
  readonly path: string;
  /** Whether the key (a forbidden name) or the value (a number, a too-deep node) is at fault. */
  readonly at: 'key' | 'value';

  constructor(segments: readonly PathSegment[], at: 'key' | 'value', message: string) {
    const path = formatFieldPath(segments);
    super(`${path ? `${path}: ` : ''}${message}`);
    this.name = 'PlainDataError';
    this.path = path;
    this.at = at;
  }
}

/** A deep copy as plain data: aliases become copies (so defaulting one place does not change
 *  another). Refuses prototype keys, numbers JSON cannot hold (`.inf`, `.nan`, 1e400) and nesting past
 *  MAX_NESTING_DEPTH (an alias can nest a node deeper than the parser saw). `path` is the stack of
 *  segments down to `v`, pushed and popped in place (no array per node). */
function toPlain(v: unknown, path: PathSegment[]): unknown {
  if (typeof v === 'number' && !Number.isFinite(v)) {
    throw new PlainDataError(
      path,
      'value',
      `${v} is not a number JSON can hold (.inf, .nan or past about 1.8e308)`,
    );
  }
  if (v === null || typeof v !== 'object') return v;
  if (path.length >= MAX_NESTING_DEPTH) {
    throw new PlainDataError(
      path,
      'value',
      `nested deeper than ${MAX_NESTING_DEPTH} levels; no Xenos object needs that many`,
    );
  }
  if (Array.isArray(v)) {
    const out = new Array(v.length);
    for (let i = 0; i < v.length; i++) {
      path.push(i);
      out[i] = toPlain(v[i], path);
      path.pop();
    }
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    path.push(k);
    if (isPrototypeKey(k)) throw new PlainDataError(path, 'key', prototypeKeyMessage(k));
    out[k] = toPlain((v as Record<string, unknown>)[k], path);
    path.pop();
  }
  return out;
}
