// `xenosctl version [--client]`: this xenosctl's version and the server's (`GET /version`).

import type { Command } from 'commander';
import { type CommandContext, VERSION_STRING } from '../context.ts';

export function registerVersion(program: Command, ctx: CommandContext): void {
  program
    .command('version')
    .description("Print xenosctl's version and the server's")
    .option('--client', 'only the client version (no request)')
    .action(async (opts: { client?: boolean }) => {
      ctx.out(`Client Version: ${VERSION_STRING}\n`);
      if (opts.client) return;
      const v = await ctx.client().version({ signal: ctx.signal });
      ctx.out(`Server Version: ${v.gitVersion ?? JSON.stringify(v)} (${ctx.settings().server})\n`);
    });
}
