// Server-side `meta.k8s.io/v1 Table` output, as kubectl asks for with
// `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`: a Name column, then the kind's
// additionalPrinterColumns evaluated with jsonpath.ts. Like the Kubernetes CRD table convertor,
// `date` cells are sent as a human-readable age ("5m3s"), since kubectl prints cells verbatim.

import type { PrinterColumn } from '../model/api-resource.ts';
import type { XObject } from '../model/object.ts';
import { firstJsonPath } from './jsonpath.ts';

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export interface TableColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface TableRow {
  cells: unknown[];
  object?: unknown;
}

export interface Table {
  apiVersion: 'meta.k8s.io/v1';
  kind: 'Table';
  metadata: { resourceVersion?: string; continue?: string };
  columnDefinitions: TableColumnDefinition[];
  rows: TableRow[];
}

const AGE: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
};

/** Does this Accept header ask for a Table (kubectl lists Table first, then plain JSON)? */
export function wantsTable(accept: string | undefined): boolean {
  if (!accept) return false;
  for (const part of accept.split(',')) {
    const params = part.split(';').map((p) => p.trim());
    const has = (k: string, v: string) => params.includes(`${k}=${v}`);
    if (has('as', 'Table') && has('g', 'meta.k8s.io') && has('v', 'v1')) return true;
    if (params[0] === 'application/json' || params[0] === '*/*') return false;
  }
  return false;
}

/** What a Table is built from: a kind's additionalPrinterColumns. */
export interface TableSource {
  printerColumns: PrinterColumn[];
}

function columnsOf(kind: TableSource): PrinterColumn[] {
  return kind.printerColumns.length > 0 ? kind.printerColumns : [AGE];
}

/** Kubernetes' duration.HumanDuration: "45s", "3m20s", "5h2m", "3d4h", "2y10d". */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8)
    return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const days = Math.floor(hours / 24) % 365;
    return days === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${days}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

/** One printer-column cell, typed the way the Kubernetes CRD table convertor types it. */
export function cellValue(type: string, value: unknown, now = Date.now()): unknown {
  if (value === undefined || value === null) return null;
  switch (type) {
    case 'date': {
      if (typeof value !== 'string') return null;
      const t = Date.parse(value);
      return Number.isNaN(t) ? '<invalid>' : humanDuration(now - t);
    }
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value) ? value : null;
    case 'number':
      return typeof value === 'number' ? value : null;
    case 'boolean':
      return typeof value === 'boolean' ? value : null;
    default:
      return typeof value === 'string' ? value : JSON.stringify(value);
  }
}

function rowObject(obj: XObject, include: IncludeObject): unknown {
  if (include === 'None') return undefined;
  if (include === 'Object') return obj;
  return { apiVersion: 'meta.k8s.io/v1', kind: 'PartialObjectMetadata', metadata: obj.metadata };
}

export function tableColumns(kind: TableSource): TableColumnDefinition[] {
  const name: TableColumnDefinition = {
    name: 'Name',
    type: 'string',
    format: 'name',
    description: 'Name must be unique within a namespace.',
    priority: 0,
  };
  return [
    name,
    ...columnsOf(kind).map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format ?? '',
      description: c.description ?? '',
      priority: c.priority ?? 0,
    })),
  ];
}

export function tableRow(
  kind: TableSource,
  obj: XObject,
  include: IncludeObject,
  now = Date.now(),
): TableRow {
  const cells: unknown[] = [obj.metadata.name];
  for (const c of columnsOf(kind)) cells.push(cellValue(c.type, firstJsonPath(obj, c.jsonPath), now));
  const row: TableRow = { cells };
  const object = rowObject(obj, include);
  if (object !== undefined) row.object = object;
  return row;
}

export function toTable(
  kind: TableSource,
  objects: XObject[],
  include: IncludeObject,
  meta: { resourceVersion?: string; continue?: string } = {},
): Table {
  const now = Date.now();
  return {
    apiVersion: 'meta.k8s.io/v1',
    kind: 'Table',
    metadata: meta,
    columnDefinitions: tableColumns(kind),
    rows: objects.map((o) => tableRow(kind, o, include, now)),
  };
}

export function parseIncludeObject(v: string | null): IncludeObject {
  if (v === 'None' || v === 'Object' || v === 'Metadata') return v;
  return 'Metadata';
}
