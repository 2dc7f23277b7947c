// Field ownership, as Kubernetes' server-side apply keeps it in `metadata.managedFields`: every write
// through the API names a field manager (`?fieldManager=`, else the client's User-Agent), and each
// manager owns the fields it set — by `Apply` (server-side apply: the fields of its applied
// configuration) or by `Update` (create, update, patch: the fields its write changed, taken from
// whoever owned them). An apply that would change a field another manager owns is a conflict (409),
// unless forced, which takes the field; a field the manager applied before and applies no more is removed
// when no one else owns it. Fields are recorded in the FieldsV1 format kubectl shows
// (`{"f:spec":{"f:replicas":{}}}`). Simplifications, all conservative: a list is one field (as an atomic
// list is), so two managers never share a list's items; `status` and the server's own metadata (name,
// uid, resourceVersion, ...) are not tracked; writes by the controllers (through the store, not the
// API) change no ownership.

import { isDeepStrictEqual } from 'node:util';
import type { ManagedFieldsEntry, ObjectMeta, XObject } from '../model/object.ts';
import { setOwn } from '../model/prototype-safety.ts';

type Obj = Record<string, unknown>;
type Path = string[];

export interface FieldConflict {
  manager: string;
  /** `.spec.replicas`, as kubectl prints it. */
  field: string;
}

/** Metadata the server owns, never a manager's. */
const SERVER_METADATA = new Set([
  'name',
  'namespace',
  'generateName',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'selfLink',
]);

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The fields `obj` sets, each a path to a scalar, a list or an empty object. */
export function fieldsOf(obj: object): Path[] {
  const out: Path[] = [];
  const walk = (v: unknown, path: Path) => {
    if (isObj(v) && Object.keys(v).length > 0) {
      for (const [k, child] of Object.entries(v)) walk(child, [...path, k]);
    } else out.push(path);
  };
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'apiVersion' || k === 'kind' || k === 'status') continue;
    if (k === 'metadata' && isObj(v)) {
      for (const [mk, mv] of Object.entries(v)) if (!SERVER_METADATA.has(mk)) walk(mv, ['metadata', mk]);
      continue;
    }
    walk(v, [k]);
  }
  return out;
}

function valueAt(obj: unknown, path: Path): unknown {
  let v = obj;
  for (const k of path) {
    if (!isObj(v) || !Object.hasOwn(v, k)) return undefined;
    v = v[k];
  }
  return v;
}

function setAt(obj: object, path: Path, value: unknown): void {
  let v = obj as Obj;
  for (const k of path.slice(0, -1)) {
    if (!isObj(v[k])) setOwn(v, k, {});
    v = v[k] as Obj;
  }
  setOwn(v, path[path.length - 1], structuredClone(value));
}

function removeAt(obj: object, path: Path): void {
  const parent = valueAt(obj, path.slice(0, -1));
  if (isObj(parent)) delete parent[path[path.length - 1]];
}

const keyOf = (p: Path) => JSON.stringify(p);
const pathOf = (k: string) => JSON.parse(k) as Path;
/** One path inside the other (or the same): changing one changes the other. */
const related = (a: Path, b: Path) => {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
};

export function toFieldsV1(paths: Iterable<Path>): Obj {
  const root: Obj = {};
  for (const p of paths) {
    let node = root;
    for (const k of p) {
      const f = `f:${k}`;
      if (!isObj(node[f])) setOwn(node, f, {});
      node = node[f] as Obj;
    }
  }
  return root;
}

export function fromFieldsV1(fields: unknown, prefix: Path = []): Path[] {
  if (!isObj(fields)) return [];
  const out: Path[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (!k.startsWith('f:')) continue; // list items and "." are not written by this server
    const path = [...prefix, k.slice(2)];
    if (isObj(v) && Object.keys(v).some((c) => c.startsWith('f:'))) out.push(...fromFieldsV1(v, path));
    else out.push(path);
  }
  return out;
}

interface Owner {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fields: Set<string>;
}

function ownersOf(meta: ObjectMeta | undefined): Owner[] {
  const entries: Partial<ManagedFieldsEntry>[] = meta?.managedFields ?? [];
  return entries
    .filter((e) => typeof e?.manager === 'string' && (e.operation === 'Apply' || e.operation === 'Update'))
    .map((e) => ({
      manager: e.manager!,
      operation: e.operation!,
      apiVersion: e.apiVersion ?? '',
      time: e.time ?? '',
      fields: new Set(fromFieldsV1(e.fieldsV1).map(keyOf)),
    }));
}

function entriesOf(owners: Owner[]): ManagedFieldsEntry[] {
  return owners
    .filter((o) => o.fields.size > 0)
    .map((o) => ({
      manager: o.manager,
      operation: o.operation,
      apiVersion: o.apiVersion,
      time: o.time,
      fieldsType: 'FieldsV1',
      fieldsV1: toFieldsV1([...o.fields].map(pathOf)),
    }));
}

function ownerFor(
  owners: Owner[],
  manager: string,
  operation: Owner['operation'],
  apiVersion: string,
): Owner {
  let o = owners.find((x) => x.manager === manager && x.operation === operation);
  if (!o) {
    o = { manager, operation, apiVersion, time: '', fields: new Set() };
    owners.push(o);
  }
  o.apiVersion = apiVersion;
  o.time = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return o;
}

/** The managedFields of `next` after `manager` wrote it over `previous` (absent: a create) by an
 *  update: the fields that changed become the manager's. Nothing changed: the old list, untouched. */
export function recordUpdate(
  previous: XObject | undefined,
  next: XObject,
  manager: string,
): ManagedFieldsEntry[] | undefined {
  const owners = ownersOf(previous?.metadata);
  const before = previous ? fieldsOf(previous) : [];
  const after = fieldsOf(next);
  const changed = new Map<string, Path>();
  for (const p of [...before, ...after])
    if (!isDeepStrictEqual(valueAt(previous, p), valueAt(next, p))) changed.set(keyOf(p), p);
  if (changed.size === 0) return previous?.metadata.managedFields;
  for (const o of owners)
    for (const k of [...o.fields])
      if ([...changed.values()].some((c) => related(c, pathOf(k)))) o.fields.delete(k);
  const mine = ownerFor(owners, manager, 'Update', next.apiVersion);
  for (const [k, p] of changed) if (valueAt(next, p) !== undefined) mine.fields.add(k);
  return entriesOf(owners);
}

/**
 * Server-side apply of `config` by `manager` over `live` (absent: it creates): the object to store (with
 * its managedFields) or, unless `force`, the conflicts with other managers.
 */
export function applyConfig(
  live: XObject | undefined,
  config: XObject,
  manager: string,
  force: boolean,
): { object: XObject; conflicts: [] } | { conflicts: FieldConflict[] } {
  const owners = ownersOf(live?.metadata);
  const applied = fieldsOf(config);
  const result: XObject = structuredClone(
    live ?? { apiVersion: config.apiVersion, kind: config.kind, metadata: config.metadata },
  );
  for (const p of applied) {
    const v = valueAt(config, p);
    if (v === null) removeAt(result, p);
    // An empty object asks for the object to exist, not for what is in it to go.
    else if (!(isObj(v) && isObj(valueAt(result, p)))) setAt(result, p, v);
  }
  const mineBefore = owners.find((o) => o.manager === manager && o.operation === 'Apply');
  const others = owners.filter((o) => o !== mineBefore);
  const conflicts: FieldConflict[] = [];
  for (const o of others)
    for (const k of o.fields) {
      const owned = pathOf(k);
      if (!applied.some((p) => related(p, owned))) continue;
      if (isDeepStrictEqual(valueAt(live, owned), valueAt(result, owned))) continue; // the same value: shared
      if (!force) conflicts.push({ manager: o.manager, field: `.${owned.join('.')}` });
      else o.fields.delete(k);
    }
  if (conflicts.length) return { conflicts };
  // What this manager applied before and applies no more goes, unless someone else owns it too.
  const now = new Set(applied.map(keyOf));
  for (const k of mineBefore?.fields ?? []) {
    if (now.has(k)) continue;
    const p = pathOf(k);
    if (others.some((o) => [...o.fields].some((f) => related(pathOf(f), p)))) continue;
    removeAt(result, p);
  }
  // The same configuration again, changing nothing (so no field was forced either): the object as it
  // is, managedFields and all.
  if (mineBefore && isDeepStrictEqual(mineBefore.fields, now) && isDeepStrictEqual(result, live))
    return { object: result, conflicts: [] };
  const mine = ownerFor(owners, manager, 'Apply', config.apiVersion);
  mine.fields = now;
  result.metadata.managedFields = entriesOf(owners);
  return { object: result, conflicts: [] };
}

/** Kubernetes' message for a refused apply (kubectl prints it as it is). */
export function conflictMessage(conflicts: FieldConflict[], apiVersion: string): string {
  const n = conflicts.length;
  const lines = conflicts.map((c) => `conflict with "${c.manager}" using ${apiVersion}: ${c.field}`);
  return n === 1
    ? `Apply failed with 1 conflict: ${lines[0]}`
    : `Apply failed with ${n} conflicts: ${lines.join('\n')}`;
}
