// Kubernetes label and field selectors: parsing (with errors that say where and what was
// expected) and matching. Used by the store's list and watch, by the API to reject bad selectors
// early with 400, and by controllers that select objects by labels.
//
// Label syntax: requirements joined by ',': `key=value`, `key==value`, `key!=value`,
// `key in (a,b)`, `key notin (a,b)`, `key` (exists), `!key` (does not exist). `!=` and `notin`
// also match objects without the label, as in Kubernetes. Field syntax: `field=value`,
// `field==value`, `field!=value` joined by ',', with `\,` `\=` `\\` escapes in values; only the
// fields Kubernetes supports for custom resources (metadata.name, metadata.namespace).

import { isDns1123Subdomain, isQualifiedNamePart } from '../model/names.ts';
import type { XObject } from '../model/object.ts';
import { InvalidSelectorError } from './errors.ts';

export type LabelOperator = '=' | '==' | '!=' | 'in' | 'notin' | 'exists' | '!exists';

export interface LabelRequirement {
  key: string;
  operator: LabelOperator;
  /** One value for = == !=; one or more for in/notin; none for exists/!exists. */
  values: string[];
}

/** All requirements must hold. Empty: matches everything. */
export type LabelSelector = LabelRequirement[];

export type FieldOperator = '=' | '==' | '!=';

export interface FieldRequirement {
  field: string;
  operator: FieldOperator;
  value: string;
}

export type FieldSelector = FieldRequirement[];

export const SUPPORTED_FIELDS: readonly string[] = ['metadata.name', 'metadata.namespace'];

const LABEL_SYNTAX =
  'expected key=value, key==value, key!=value, key in (v1,v2), key notin (v1,v2), key or !key';

type TokenKind = 'id' | '!' | '=' | '==' | '!=' | '(' | ')' | ',' | 'end';

interface Token {
  kind: TokenKind;
  text: string;
  /** 1-based column in the selector, for messages. */
  col: number;
}

function tokenize(s: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const two = s.slice(i, i + 2);
    if (two === '==' || two === '!=') {
      tokens.push({ kind: two, text: two, col: i + 1 });
      i += 2;
    } else if (c === '!' || c === '=' || c === '(' || c === ')' || c === ',') {
      tokens.push({ kind: c, text: c, col: i + 1 });
      i++;
    } else if (c === '<' || c === '>') {
      throw new InvalidSelectorError(
        s,
        `at column ${i + 1}: the operator "${c}" is not supported; ${LABEL_SYNTAX}`,
      );
    } else {
      const start = i;
      while (i < s.length && !/[\s!=(),<>]/.test(s[i])) i++;
      tokens.push({ kind: 'id', text: s.slice(start, i), col: start + 1 });
    }
  }
  tokens.push({ kind: 'end', text: '', col: s.length + 1 });
  return tokens;
}

function describe(t: Token): string {
  return t.kind === 'end' ? 'the end of the selector' : `"${t.text}"`;
}

/** Parses a label selector; throws InvalidSelectorError saying where and what was expected. */
export function parseLabelSelector(s: string): LabelSelector {
  const tokens = tokenize(s);
  const reqs: LabelSelector = [];
  let p = 0;
  const fail = (t: Token, what: string): never => {
    throw new InvalidSelectorError(
      s,
      `at column ${t.col}: expected ${what}, found ${describe(t)}; ${LABEL_SYNTAX}`,
    );
  };
  const key = (): string => {
    const t = tokens[p];
    if (t.kind !== 'id') fail(t, 'a label key');
    checkKey(s, t);
    p++;
    return t.text;
  };
  const value = (): string => {
    const t = tokens[p];
    if (t.kind !== 'id') return ''; // `a=` selects the empty value, as in Kubernetes
    checkValue(s, t);
    p++;
    return t.text;
  };
  if (tokens[0].kind === 'end') return reqs;
  for (;;) {
    const first = tokens[p];
    if (first.kind === '!') {
      p++;
      reqs.push({ key: key(), operator: '!exists', values: [] });
    } else {
      const k = key();
      const op = tokens[p];
      if (op.kind === '=' || op.kind === '==' || op.kind === '!=') {
        p++;
        reqs.push({ key: k, operator: op.kind, values: [value()] });
      } else if (op.kind === 'id' && (op.text === 'in' || op.text === 'notin')) {
        p++;
        if (tokens[p].kind !== '(') fail(tokens[p], `"(" after "${op.text}"`);
        p++;
        if (tokens[p].kind === ')') fail(tokens[p], `at least one value in "${op.text} (...)"`);
        const values: string[] = [];
        for (;;) {
          values.push(value());
          if (tokens[p].kind === ',') {
            p++;
            continue;
          }
          if (tokens[p].kind === ')') {
            p++;
            break;
          }
          fail(tokens[p], '"," or ")" in the value list');
        }
        reqs.push({ key: k, operator: op.text, values });
      } else if (op.kind === ',' || op.kind === 'end') {
        reqs.push({ key: k, operator: 'exists', values: [] });
      } else {
        fail(op, 'an operator (=, ==, !=, in, notin), "," or the end');
      }
    }
    const sep = tokens[p];
    if (sep.kind === 'end') return reqs;
    if (sep.kind !== ',') fail(sep, '"," between requirements');
    p++;
  }
}

function checkKey(s: string, t: Token): void {
  const slash = t.text.indexOf('/');
  const prefix = slash >= 0 ? t.text.slice(0, slash) : undefined;
  const name = slash >= 0 ? t.text.slice(slash + 1) : t.text;
  if (prefix !== undefined && !isDns1123Subdomain(prefix)) {
    throw new InvalidSelectorError(
      s,
      `at column ${t.col}: the key prefix "${prefix}" must be a DNS subdomain (lower-case letters, digits, '-', '.'; at most 253 characters)`,
    );
  }
  if (!isQualifiedNamePart(name)) {
    throw new InvalidSelectorError(
      s,
      `at column ${t.col}: the key "${t.text}" is not a valid label key (at most 63 letters, digits, '-', '_', '.', ` +
        'starting and ending with a letter or digit, optionally prefixed by a DNS subdomain and "/")',
    );
  }
}

function checkValue(s: string, t: Token): void {
  if (!isQualifiedNamePart(t.text)) {
    throw new InvalidSelectorError(
      s,
      `at column ${t.col}: "${t.text}" is not a valid label value (at most 63 letters, digits, '-', '_', '.', ` +
        'starting and ending with a letter or digit)',
    );
  }
}

export function matchesLabels(sel: LabelSelector, labels: Record<string, string> | undefined): boolean {
  for (const r of sel) {
    const has = labels !== undefined && Object.hasOwn(labels, r.key);
    const v = has ? labels[r.key] : undefined;
    switch (r.operator) {
      case '=':
      case '==':
      case 'in':
        if (!has || !r.values.includes(v!)) return false;
        break;
      case '!=':
      case 'notin':
        if (has && r.values.includes(v!)) return false;
        break;
      case 'exists':
        if (!has) return false;
        break;
      case '!exists':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** The selector that a `matchLabels`-style map means: every key equal to its value. */
export function selectorFromLabels(labels: Record<string, string>): LabelSelector {
  return Object.entries(labels).map(([key, v]) => ({ key, operator: '=' as const, values: [v] }));
}

/** Back to the text form (parseLabelSelector(formatLabelSelector(s)) gives s again). */
export function formatLabelSelector(sel: LabelSelector): string {
  return sel
    .map((r) => {
      switch (r.operator) {
        case 'exists':
          return r.key;
        case '!exists':
          return `!${r.key}`;
        case 'in':
        case 'notin':
          return `${r.key} ${r.operator} (${r.values.join(',')})`;
        default:
          return `${r.key}${r.operator}${r.values[0]}`;
      }
    })
    .join(',');
}

/** Parses a field selector; only `supported` fields may be named (400 otherwise, as Kubernetes). */
export function parseFieldSelector(
  s: string,
  supported: readonly string[] = SUPPORTED_FIELDS,
): FieldSelector {
  const reqs: FieldSelector = [];
  if (s.trim() === '') return reqs;
  for (const term of splitUnescaped(s, ',')) {
    const found = findOperator(term);
    if (!found) {
      throw new InvalidSelectorError(
        s,
        `"${term}" is not a requirement; expected field=value, field==value or field!=value`,
      );
    }
    const field = term.slice(0, found.at).trim();
    if (!supported.includes(field)) {
      throw new InvalidSelectorError(
        s,
        `field label not supported: "${field}"; the fields that can be selected are ${supported.join(', ')}`,
      );
    }
    reqs.push({ field, operator: found.op, value: unescapeValue(term.slice(found.at + found.op.length)) });
  }
  return reqs;
}

/** Back to the text form, values escaped (parseFieldSelector(formatFieldSelector(s)) gives s again). */
export function formatFieldSelector(sel: FieldSelector): string {
  return sel.map((r) => `${r.field}${r.operator}${r.value.replace(/[\\,=!]/g, '\\$&')}`).join(',');
}

export function matchesFields(sel: FieldSelector, obj: XObject): boolean {
  for (const r of sel) {
    const actual = fieldValue(obj, r.field);
    if ((actual === r.value) === (r.operator === '!=')) return false;
  }
  return true;
}

function fieldValue(obj: XObject, field: string): string {
  if (field === 'metadata.name') return obj.metadata.name;
  if (field === 'metadata.namespace') return obj.metadata.namespace ?? '';
  let cur: unknown = obj;
  for (const part of field.split('.')) {
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[part] : undefined;
  }
  return cur === undefined || cur === null ? '' : String(cur);
}

function splitUnescaped(s: string, sep: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === sep) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

function findOperator(term: string): { at: number; op: FieldOperator } | undefined {
  for (let i = 0; i < term.length; i++) {
    if (term[i] === '\\') {
      i++;
      continue;
    }
    for (const op of ['!=', '==', '='] as const) {
      if (term.startsWith(op, i)) return { at: i, op };
    }
  }
  return undefined;
}

function unescapeValue(v: string): string {
  return v.replace(/\\(.)/g, '$1');
}
