// kubectl-style tables: upper-case headers, left-aligned columns padded by three spaces, and the
// rows of `xenosctl get` built from a kind's printer columns (NAME first, `<none>` for an empty
// cell, AGE humanized like kubectl). Priority > 0 columns appear only with -o wide.

import { type TableSource, tableColumns, tableRow } from '../../api/table.ts';
import type { XObject } from '../../model/object.ts';

const PADDING = 3;

/** Aligns rows under headers. Every row must have as many cells as there are headers. */
export function formatTable(headers: string[], rows: string[][], widths?: number[]): string {
  const w = widths ?? columnWidths(headers, rows);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(w[i] + PADDING)))
      .join('')
      .trimEnd();
  return [headers, ...rows].map(line).join('\n') + '\n';
}

export function columnWidths(headers: string[], rows: string[][]): number[] {
  return headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
}

export interface TableOptions {
  wide?: boolean;
  /** Adds a NAMESPACE column first (get -A). */
  withNamespace?: boolean;
  now?: number;
}

export interface TableData {
  headers: string[];
  rows: string[][];
}

function cellText(v: unknown): string {
  if (v === null || v === undefined || v === '') return '<none>';
  return String(v);
}

/** The headers and rows `get` prints for these objects of one kind: the same columns as the
 *  server's Table (NAME, the printer columns, or AGE when the kind has none). */
export function objectTable(kind: TableSource, objects: XObject[], opts: TableOptions = {}): TableData {
  const columns = tableColumns(kind);
  const keep = columns.map((c) => Boolean(opts.wide) || c.priority === 0);
  const headers = columns.filter((_, i) => keep[i]).map((c) => c.name.toUpperCase());
  const now = opts.now ?? Date.now();
  const rows = objects.map((o) => {
    const cells = tableRow(kind, o, 'None', now)
      .cells.filter((_, i) => keep[i])
      .map(cellText);
    return opts.withNamespace ? [o.metadata.namespace ?? '', ...cells] : cells;
  });
  return { headers: opts.withNamespace ? ['NAMESPACE', ...headers] : headers, rows };
}
