// YAML and JSON renderings of objects and lists, as `-o yaml` / `-o json` and describe/diff print
// them: keys in the order the server sent them, no line folding, no anchors.

import { dump } from 'js-yaml';
import type { XObject } from '../../model/object.ts';

export function toYaml(value: unknown): string {
  return dump(value, { noRefs: true, lineWidth: -1, sortKeys: false });
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** One object as itself, several as a `List` like kubectl. */
export function asListOrObject(objects: XObject[], single: boolean): unknown {
  if (single && objects.length === 1) return objects[0];
  return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items: objects };
}
