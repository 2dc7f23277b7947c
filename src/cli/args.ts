// Parsing of xenosctl's argument values: durations (`30s`, `2m`), `-o` formats, `KIND NAME...` vs
// `KIND/NAME` forms, `wait --for=...` and the `--mode` of migrate and drain. Each throws UsageError (exit 2)
// saying what it expected.

import { UsageError } from './errors.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `500ms`, `30s`, `2m`, `1h30m`, or a bare number of seconds → milliseconds. */
export function parseDuration(text: string, flag = 'duration'): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    total += Number(m[1]) * UNITS[m[2]];
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== t.length) {
    throw new UsageError(`invalid ${flag} "${text}": expected a duration such as 30s, 2m, 1h30m or 500ms`);
  }
  return Math.round(total);
}

const MIGRATION_MODES = { auto: 'Auto', live: 'Live', cold: 'Cold' } as const;

/** `--mode` of migrate and drain: auto, live or cold (any case) as a ServiceMigration's spec.mode. */
export function parseMigrationMode(value: string): (typeof MIGRATION_MODES)[keyof typeof MIGRATION_MODES] {
  const mode = MIGRATION_MODES[value.toLowerCase() as keyof typeof MIGRATION_MODES];
  if (!mode) throw new UsageError(`invalid --mode "${value}": expected auto, live or cold`);
  return mode;
}

export type OutputFormat =
  | { kind: 'table'; wide: boolean }
  | { kind: 'yaml' }
  | { kind: 'json' }
  | { kind: 'name' }
  | { kind: 'jsonpath'; template: string };

const FORMATS = 'wide, yaml, json, name, jsonpath=TEMPLATE';

export function parseOutput(value: string | undefined): OutputFormat {
  if (value === undefined || value === '') return { kind: 'table', wide: false };
  if (value === 'wide') return { kind: 'table', wide: true };
  if (value === 'yaml' || value === 'json' || value === 'name') return { kind: value };
  const m = /^jsonpath=(.*)$/s.exec(value);
  if (m) {
    if (!m[1]) throw new UsageError('-o jsonpath= needs a template, e.g. -o jsonpath={.metadata.name}');
    return { kind: 'jsonpath', template: m[1] };
  }
  throw new UsageError(`unknown output format "${value}" (expected one of: ${FORMATS})`);
}

export interface TypedNames {
  kind: string;
  names: string[];
}

/**
 * `KIND [NAME...]` or `KIND/NAME [KIND/NAME...]` → names grouped by kind, in order.
 * A bare `KIND` gives one group with no names (list all); `KIND1,KIND2` gives a group per kind.
 */
export function parseTypeNames(args: string[]): TypedNames[] {
  if (args.length === 0) throw new UsageError('you must specify the type of resource, e.g. serviceinstances');
  if (args[0].includes('/')) {
    const groups: TypedNames[] = [];
    for (const a of args) {
      const slash = a.indexOf('/');
      const kind = a.slice(0, slash);
      const name = a.slice(slash + 1);
      if (slash <= 0 || !name || name.includes('/')) {
        throw new UsageError(`"${a}" is not KIND/NAME; use KIND/NAME for every argument or KIND NAME...`);
      }
      const g = groups.find((x) => x.kind === kind);
      if (g) g.names.push(name);
      else groups.push({ kind, names: [name] });
    }
    return groups;
  }
  const [kinds, ...names] = args;
  const bad = names.find((n) => n.includes('/'));
  if (bad) {
    throw new UsageError(
      `there is no need to specify a resource type as a separate argument when passing "${bad}"`,
    );
  }
  // `st,si` names several kinds; the names (if any) are looked up in each.
  const list = kinds.split(',').filter(Boolean);
  if (list.length === 0) throw new UsageError(`"${kinds}" names no resource type`);
  return list.map((kind) => ({ kind, names: [...names] }));
}

export type WaitFor = { kind: 'condition'; type: string; status: string } | { kind: 'delete' };

/** `condition=Ready`, `condition=Ready=False`, `delete`. */
export function parseWaitFor(value: string | undefined): WaitFor {
  if (!value) throw new UsageError('--for is required: --for=condition=Ready[=True|False] or --for=delete');
  if (value === 'delete') return { kind: 'delete' };
  const m = /^condition=([^=]+)(?:=(.+))?$/.exec(value);
  if (!m) throw new UsageError(`invalid --for "${value}": expected condition=TYPE[=STATUS] or delete`);
  const status = m[2] ?? 'True';
  const canonical = { true: 'True', false: 'False', unknown: 'Unknown' }[status.toLowerCase()];
  if (!canonical) throw new UsageError(`invalid --for "${value}": the status must be True, False or Unknown`);
  return { kind: 'condition', type: m[1], status: canonical };
}

export type DryRun = 'none' | 'client' | 'server';

export function parseDryRun(value: string | boolean | undefined): DryRun {
  if (value === undefined || value === false || value === 'none') return 'none';
  if (value === true || value === '') return 'client';
  if (value === 'client' || value === 'server') return value;
  throw new UsageError(`invalid --dry-run "${value}": expected none, client or server`);
}
