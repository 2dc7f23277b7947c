// Prints objects in the format -o asked for: a table (plain or wide), YAML, JSON, names, or a
// jsonpath template. Shared by `get`, and by `apply`/`diff` users of -o in later commands.

import type { XObject } from '../../model/object.ts';
import type { OutputFormat } from '../args.ts';
import { qualifiedSingular, type ResolvedKind } from '../resources.ts';
import { renderTemplate } from './jsonpath-template.ts';
import { formatTable, objectTable } from './table.ts';
import { asListOrObject, toJson, toYaml } from './yaml.ts';

export interface PrintOptions {
  format: OutputFormat;
  kind: ResolvedKind;
  /** The user named exactly one object: print it alone rather than as a List. */
  single: boolean;
  withNamespace?: boolean;
}

export function printObjects(objects: XObject[], opts: PrintOptions): string {
  const f = opts.format;
  switch (f.kind) {
    case 'table': {
      if (objects.length === 0) return '';
      const t = objectTable(opts.kind, objects, { wide: f.wide, withNamespace: opts.withNamespace });
      return formatTable(t.headers, t.rows);
    }
    case 'yaml':
      return toYaml(asListOrObject(objects, opts.single));
    case 'json':
      return toJson(asListOrObject(objects, opts.single));
    case 'name':
      return objects.map((o) => `${qualifiedSingular(opts.kind)}/${o.metadata.name}\n`).join('');
    case 'jsonpath':
      return renderTemplate(f.template, asListOrObject(objects, opts.single));
  }
}
