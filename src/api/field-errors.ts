// The errors validation reports: a FieldError says where (`spec.ports[0].port`), why (a Kubernetes
// cause reason) and what was expected; the located form keeps the path's segments for pruning. Also
// the small wording helpers every check shares (how a value looks, plurals, "a, b or c").

import { formatFieldPath, type PathSegment } from './field-path.ts';

export type FieldErrorReason =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueNotSupported'
  | 'FieldValueTypeInvalid'
  | 'FieldValueTooLong'
  | 'FieldValueForbidden'
  | 'FieldValueUnknown'
  | 'FieldValueDuplicate';

export interface FieldError {
  /** Where, e.g. `spec.ports[0].port`; `''` for the object itself. */
  path: string;
  reason: FieldErrorReason;
  /** What was wrong and what was expected, e.g. `must be one of Always, Manual; got "Sometimes"`. */
  message: string;
}

export interface LocatedFieldError extends FieldError {
  segments: PathSegment[];
}

export function err(segments: PathSegment[], reason: FieldErrorReason, message: string): LocatedFieldError {
  return { path: formatFieldPath(segments), segments, reason, message };
}

export function dedupe(errors: LocatedFieldError[]): LocatedFieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const id = `${e.path}\0${e.reason}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** How a value looks in a message: `string "abc"`, `integer 3`, `a list`, `null`. */
export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  if (typeof v === 'number') return `${Number.isInteger(v) ? 'integer' : 'number'} ${v}`;
  return `${typeof v} ${String(v)}`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function orList(items: string[]): string {
  return items.length <= 1
    ? items.join('')
    : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

export function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
