// `xenosctl get KIND [NAME...] | KIND/NAME... [-o ...] [-l SELECTOR] [-w] [-A]`: list or show
// objects as a table of the kind's printer columns, YAML, JSON, names or a jsonpath template;
// with -w, keep printing them as they change.

import type { Command } from 'commander';
import { ApiStatusError } from '../../client/errors.ts';
import type { XObject } from '../../model/object.ts';
import { parseOutput, parseTypeNames } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { CliError } from '../errors.ts';
import { printObjects } from '../printers/output.ts';
import { columnWidths, formatTable, objectTable } from '../printers/table.ts';
import { toJson, toYaml } from '../printers/yaml.ts';
import type { ResolvedKind } from '../resources.ts';
import { listThenWatch } from '../watch-loop.ts';

interface GetOptions {
  output?: string;
  selector?: string;
  fieldSelector?: string;
  watch?: boolean;
  allNamespaces?: boolean;
}

function qualifiedPlural(k: ResolvedKind): string {
  return k.group ? `${k.plural}.${k.group}` : k.plural;
}

export function registerGet(program: Command, ctx: CommandContext): void {
  program
    .command('get')
    .description('Display one or many objects')
    .argument(
      '<kind>',
      'plural, singular, short name or Kind (serviceinstances, serviceinstance, si, ServiceInstance), or KIND/NAME',
    )
    .argument('[names...]', 'names of objects (default: all)')
    .option('-o, --output <format>', 'wide, yaml, json, name, or jsonpath=TEMPLATE')
    .option('-l, --selector <selector>', 'label selector, e.g. app=web,tier!=db')
    .option('--field-selector <selector>', 'field selector, e.g. metadata.name=web')
    .option('-w, --watch', 'after listing, print objects as they change')
    .option('-A, --all-namespaces', 'list across all namespaces')
    .addHelpText(
      'after',
      `
Examples:
  xenosctl get serviceinstances
  xenosctl get si web -o yaml
  xenosctl get si/web st/web -o name
  xenosctl get si -l app=web -o wide
  xenosctl get si -A -w
  xenosctl get si web -o jsonpath='{.status.endpoints[0].url}'`,
    )
    .action(async (kindArg: string, nameArgs: string[], opts: GetOptions) => {
      const format = parseOutput(opts.output);
      const groups = parseTypeNames([kindArg, ...nameArgs]);
      const client = ctx.client();
      const namespace = opts.allNamespaces ? undefined : ctx.settings().namespace;
      if (opts.watch) {
        if (groups.length > 1 || groups[0].names.length > 1) {
          throw new CliError('get -w watches one kind and at most one name', { exitCode: 2 });
        }
        const kind = await ctx.resolver().resolve(groups[0].kind, { signal: ctx.signal });
        await watchObjects(ctx, kind, {
          namespace: kind.namespaced ? namespace : undefined,
          labelSelector: opts.selector,
          fieldSelector: [opts.fieldSelector, groups[0].names[0] ? `metadata.name=${groups[0].names[0]}` : '']
            .filter(Boolean)
            .join(','),
          format,
          withNamespace: Boolean(opts.allNamespaces),
        });
        return;
      }
      let missing = 0;
      const single = groups.length === 1 && groups[0].names.length === 1;
      const collected: { kind: ResolvedKind; objects: XObject[] }[] = [];
      for (const g of groups) {
        const kind = await ctx.resolver().resolve(g.kind, { signal: ctx.signal });
        const ns = kind.namespaced ? namespace : undefined;
        let objects: XObject[] = [];
        if (g.names.length === 0) {
          const list = await client.list(kind, {
            namespace: ns,
            labelSelector: opts.selector,
            fieldSelector: opts.fieldSelector,
            signal: ctx.signal,
          });
          objects = list.items;
        } else {
          for (const name of g.names) {
            try {
              const byName = kind.namespaced ? ctx.settings().namespace : undefined;
              objects.push(await client.get(kind, name, { namespace: byName, signal: ctx.signal }));
            } catch (err) {
              if (!(err instanceof ApiStatusError) || err.code !== 404) throw err;
              ctx.err(`Error from server (NotFound): ${qualifiedPlural(kind)} "${name}" not found\n`);
              missing++;
            }
          }
        }
        collected.push({ kind, objects });
      }
      const total = collected.reduce((n, c) => n + c.objects.length, 0);
      if (format.kind === 'table' || format.kind === 'name') {
        collected.forEach((c, i) => {
          const text = printObjects(c.objects, {
            format,
            kind: c.kind,
            single,
            withNamespace: opts.allNamespaces,
          });
          if (text && i > 0 && format.kind === 'table') ctx.out('\n');
          ctx.out(text);
        });
      } else {
        // One document for everything asked, as kubectl prints a List across kinds.
        const all = collected.flatMap((c) => c.objects);
        ctx.out(printObjects(all, { format, kind: collected[0].kind, single }));
      }
      if (total === 0 && missing === 0 && format.kind === 'table') {
        ctx.err(
          namespace && collected.some((c) => c.kind.namespaced)
            ? `No resources found in ${namespace} namespace.\n`
            : 'No resources found\n',
        );
      }
      if (missing > 0) throw new CliError('', { exitCode: 1 });
    });
}

interface WatchPrintOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  format: ReturnType<typeof parseOutput>;
  withNamespace: boolean;
}

/** Lists, then prints each change: table rows under one header, or one document per change. */
async function watchObjects(ctx: CommandContext, kind: ResolvedKind, opts: WatchPrintOptions): Promise<void> {
  let widths: number[] | undefined;
  let headerPrinted = false;
  const print = (objects: XObject[]) => {
    if (objects.length === 0) return;
    const f = opts.format;
    if (f.kind === 'table') {
      const t = objectTable(kind, objects, { wide: f.wide, withNamespace: opts.withNamespace });
      // Columns keep the widths of the first print (and grow when a wider cell comes).
      widths = columnWidths(t.headers, t.rows).map((w, i) => Math.max(w, widths?.[i] ?? 0));
      const text = formatTable(t.headers, t.rows, widths);
      ctx.out(headerPrinted ? text.slice(text.indexOf('\n') + 1) : text);
      headerPrinted = true;
    } else if (f.kind === 'yaml') {
      for (const o of objects) ctx.out(`---\n${toYaml(o)}`);
    } else if (f.kind === 'json') {
      for (const o of objects) ctx.out(toJson(o));
    } else {
      for (const o of objects) ctx.out(printObjects([o], { format: f, kind, single: true }));
    }
  };
  await listThenWatch(
    ctx.client(),
    kind,
    {
      namespace: opts.namespace,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector || undefined,
      signal: ctx.signal,
    },
    {
      onList: (items) => {
        print(items);
        return false;
      },
      onEvent: (ev) => {
        print([ev.object]);
        return false;
      },
    },
  );
}
