// The watch history that outlives a restart. The in-memory history (watch-hub.ts) holds this process's
// events only; before it, the objects table itself is the history, as etcd's is: every row carries the
// revision of its last change, and a deleted object stays as a tombstone. A watch from an older revision
// (a client resuming across a xenosd restart) first gets, from the table, each object of its kind that
// changed since — once, in its latest state: MODIFIED (DELETED when it no longer matches the watch's
// labels, or is gone) — and then the in-memory history, exactly. What the table cannot replay — a
// tombstone purged, an expired row removed — marks the kind compacted through that revision
// (`compacted:<kind>` in the meta table), and a watch from before that mark is Expired (410), as
// Kubernetes answers a compacted revision: the client lists again.

import { ExpiredError } from './errors.ts';
import { toObject } from './replicated-merge.ts';
import { matchesFields, matchesLabels } from './selectors.ts';
import { allRows } from './sqlite-rows.ts';
import type { ObjectTable } from './sqlite-table.ts';
import type { WatchEvent } from './store.ts';
import type { WatchFilter } from './watch-hub.ts';

const BATCH = 500;

/** Records that `kind`'s changes up to `revision` can no longer all be replayed from the table. */
export function compactThrough(t: ObjectTable, kind: string, revision: number): void {
  if (revision > compactedThrough(t, kind)) t.setMeta(`compacted:${kind}`, String(revision));
}

/** Rows just purged from the table (their kind and revision): each kind's replayable history now starts
 *  after the newest of them. */
export function compactPurged(t: ObjectTable, purged: readonly { kind: string; revision: number }[]): void {
  const newest = new Map<string, number>();
  for (const r of purged) newest.set(r.kind, Math.max(newest.get(r.kind) ?? 0, r.revision));
  for (const [kind, revision] of newest) compactThrough(t, kind, revision);
}

export function compactedThrough(t: ObjectTable, kind: string): number {
  return Number(t.meta(`compacted:${kind}`) ?? 0);
}

/** Delivers what changed in `filter.kind` after `filter.fromRevision` up to `through`, from the table;
 *  throws ExpiredError when that is no longer all there. */
export function replayFromTable(
  t: ObjectTable,
  filter: WatchFilter & { fromRevision: number },
  through: number,
  onEvent: (ev: WatchEvent) => void,
): void {
  const compacted = compactedThrough(t, filter.kind);
  if (filter.fromRevision < compacted)
    throw new ExpiredError(String(filter.fromRevision), String(compacted + 1));
  type Row = { namespace: string; name: string; revision: number; deleted: number; body: string };
  for (let after = filter.fromRevision; ; ) {
    const rows = allRows<Row>(t.sql.changesOfKind, filter.kind, after, through, BATCH);
    for (const r of rows) {
      after = r.revision;
      if (filter.namespace !== undefined && r.namespace !== filter.namespace) continue;
      const object = toObject(r.body, r.revision);
      if (!matchesFields(filter.fields, object)) continue;
      const matches = !r.deleted && matchesLabels(filter.labels, object.metadata.labels);
      onEvent({ type: matches ? 'MODIFIED' : 'DELETED', object });
    }
    if (rows.length < BATCH) return;
  }
}
