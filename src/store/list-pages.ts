// Lists read from the store's rows: selectors applied, `limit` pages with an opaque `continue` token
// (the page's revision and the last key), as the Kubernetes API pages. Every page reports the first
// page's revision, so a watch from it misses nothing any page missed.

import type { ObjectOf } from '../model/kinds.ts';
import { BadRequestError } from './errors.ts';
import { toObject } from './replicated-merge.ts';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.ts';
import { iterateRows } from './sqlite-rows.ts';
import type { ListRow, ObjectTable } from './sqlite-table.ts';
import type { ListOptions, ListResult } from './store.ts';

interface ContinueToken {
  rv: number;
  ns: string;
  name: string;
}

/** One page of `kind`. `namespace` is the namespace to list (undefined: all, or a cluster-scoped kind);
 *  `namespaceOf` gives an object's stored namespace, for the token. */
export function listPage<K extends string>(
  table: ObjectTable,
  kind: K,
  opts: ListOptions,
  namespace: string | undefined,
  namespaceOf: (ns: string | undefined) => string,
): ListResult<ObjectOf<K>> {
  const labels = parseLabelSelector(opts.labelSelector ?? '');
  const fields = parseFieldSelector(opts.fieldSelector ?? '');
  const limit = opts.limit ?? 0;
  if (!Number.isInteger(limit) || limit < 0) {
    throw new BadRequestError(`limit must be a non-negative integer, got ${opts.limit}`);
  }
  const token = opts.continue ? decodeContinue(opts.continue) : undefined;
  const rows =
    namespace === undefined
      ? iterateRows<ListRow>(table.sql.listAll, kind, token?.ns ?? '', token?.name ?? '')
      : iterateRows<ListRow>(table.sql.listNs, kind, namespace, token?.ns === namespace ? token.name : '');
  const items: ObjectOf<K>[] = [];
  let more = false;
  for (const row of rows) {
    const obj = toObject<ObjectOf<K>>(row.body, row.revision);
    if (!matchesFields(fields, obj) || !matchesLabels(labels, obj.metadata.labels)) continue;
    if (limit > 0 && items.length === limit) {
      more = true;
      break;
    }
    items.push(obj);
  }
  const rv = token?.rv ?? table.rev;
  const result: ListResult<ObjectOf<K>> = { items, resourceVersion: String(rv) };
  if (more) {
    const last = items[items.length - 1];
    result.continue = encodeContinue({
      rv,
      ns: namespaceOf(last.metadata.namespace),
      name: last.metadata.name,
    });
  }
  return result;
}

function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: 1, rv: t.rv, ns: t.ns, n: t.name })).toString('base64url');
}

function decodeContinue(s: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    if (t.v === 1 && Number.isInteger(t.rv) && typeof t.ns === 'string' && typeof t.n === 'string') {
      return { rv: t.rv, ns: t.ns, name: t.n };
    }
  } catch {
    // fall through to the error below
  }
  throw new BadRequestError(
    `invalid continue token "${s}": pass the "continue" value of the previous page unchanged, or list again without it`,
  );
}
