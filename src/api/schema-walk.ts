// Walks over an object along its kind's schema: the checks and fills ajv does not do — list-type
// uniqueness (x-kubernetes-list-type set/map) and the CRD `default`s — and the formats a schema names.

import type { SchemaNode } from '../model/crd.ts';
import { describeValue, err, isObject, type LocatedFieldError } from './field-errors.ts';
import { formatFieldPath, type PathSegment } from './field-path.ts';

/** x-kubernetes-list-type set/map: no two items (or map keys) alike. */
export function listTypeErrors(node: SchemaNode, value: unknown, segs: PathSegment[]): LocatedFieldError[] {
  const listType = node['x-kubernetes-list-type'];
  if ((listType !== 'set' && listType !== 'map') || !Array.isArray(value)) return [];
  const keys: string[] = node['x-kubernetes-list-map-keys'] ?? [];
  const seen = new Map<string, number>();
  const out: LocatedFieldError[] = [];
  value.forEach((item, i) => {
    let id: string;
    let what: string;
    if (listType === 'set') {
      id = JSON.stringify(item);
      what = `value ${describeValue(item)}`;
    } else {
      if (!isObject(item)) return;
      const tuple = keys.map((k) => item[k] ?? node.items?.properties?.[k]?.default);
      id = JSON.stringify(tuple);
      what = keys.map((k, j) => `${k} ${describeValue(tuple[j])}`).join(', ');
    }
    const first = seen.get(id);
    if (first === undefined) seen.set(id, i);
    else {
      out.push(
        err(
          [...segs, i],
          'FieldValueDuplicate',
          `Duplicate value: ${what} is already used by ${formatFieldPath([...segs, first])}`,
        ),
      );
    }
  });
  return out;
}

export type Visit = (node: SchemaNode, value: unknown, segs: PathSegment[]) => void;

/** Calls `visit` for each schema node that has a value, parents before children. */
export function walkSchema(node: SchemaNode, value: unknown, segs: PathSegment[], visit: Visit): void {
  visit(node, value, segs);
  if (Array.isArray(value)) {
    if (isObject(node.items)) {
      for (const [i, v] of value.entries()) walkSchema(node.items, v, [...segs, i], visit);
    }
  } else if (isObject(value)) {
    if (isObject(node.properties)) {
      for (const [name, sub] of Object.entries(node.properties as Record<string, SchemaNode>)) {
        if (value[name] !== undefined) walkSchema(sub, value[name], [...segs, name], visit);
      }
    } else if (isObject(node.additionalProperties)) {
      for (const [k, v] of Object.entries(value))
        walkSchema(node.additionalProperties, v, [...segs, k], visit);
    }
  }
}

export const defaultNode: Visit = (node, value) => {
  if (!isObject(value) || !isObject(node.properties)) return;
  for (const [name, sub] of Object.entries(node.properties as Record<string, SchemaNode>)) {
    if (sub.default === undefined) continue;
    if (value[name] === undefined || (value[name] === null && sub.nullable !== true)) {
      value[name] = structuredClone(sub.default);
    }
  }
};

export function collectFormats(node: unknown, into: Set<string>): void {
  if (Array.isArray(node)) {
    for (const n of node) collectFormats(n, into);
  } else if (isObject(node)) {
    if (typeof node.format === 'string') into.add(node.format);
    for (const v of Object.values(node)) collectFormats(v, into);
  }
}
