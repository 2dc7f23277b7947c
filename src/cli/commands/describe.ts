// `xenosctl describe KIND NAME... | KIND/NAME`: one object in words, with its conditions,
// endpoints and the Events recorded about it.

import type { Command } from 'commander';
import { parseTypeNames } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { CliError } from '../errors.ts';
import { describeObject } from '../printers/describe.ts';

export function registerDescribe(program: Command, ctx: CommandContext): void {
  program
    .command('describe')
    .description('Show one or more objects in detail, with their conditions and events')
    .argument('<kind>', 'the kind (any of its names), or KIND/NAME')
    .argument('[names...]', 'object names')
    .addHelpText(
      'after',
      `
Examples:
  xenosctl describe serviceinstance web
  xenosctl describe si/web
  xenosctl describe hosts`,
    )
    .action(async (kindArg: string, nameArgs: string[]) => {
      const client = ctx.client();
      const ns = ctx.settings().namespace;
      const sections: string[] = [];
      for (const g of parseTypeNames([kindArg, ...nameArgs])) {
        const kind = await ctx.resolver().resolve(g.kind, { signal: ctx.signal });
        const namespace = kind.namespaced ? ns : undefined;
        const objects =
          g.names.length === 0
            ? (await client.list(kind, { namespace, signal: ctx.signal })).items
            : await Promise.all(g.names.map((n) => client.get(kind, n, { namespace, signal: ctx.signal })));
        for (const obj of objects) {
          const events = await client.events(obj.metadata.namespace || ns, obj.metadata.name, {
            kind: obj.kind,
            signal: ctx.signal,
          });
          sections.push(describeObject(obj, events));
        }
      }
      if (sections.length === 0) throw new CliError(`No resources found in ${ns} namespace.`);
      ctx.out(sections.join('\n\n'));
    });
}
