// `xenosctl wait KIND/NAME... --for=condition=Ready[=True|False] | --for=delete [--timeout=30s]`:
// block until every named object meets the condition, watching rather than polling.

import type { Command } from 'commander';
import { parseDuration, parseTypeNames, parseWaitFor } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import { qualifiedSingular } from '../resources.ts';
import { waitFor } from '../waiters.ts';

export function registerWait(program: Command, ctx: CommandContext): void {
  program
    .command('wait')
    .description('Wait for objects to reach a condition or to be deleted')
    .argument('<kind>', 'KIND/NAME, or a kind followed by names')
    .argument('[names...]', 'object names')
    .option('--for <what>', 'condition=TYPE[=True|False|Unknown] or delete')
    .option('--timeout <duration>', 'give up after this long (e.g. 30s, 5m)', '30s')
    .addHelpText(
      'after',
      `
A condition counts only if its observedGeneration (when set) is not older than the object's
metadata.generation, so a Ready left over from the previous spec does not end the wait.
Exit code 1 on timeout.

Examples:
  xenosctl wait si/web --for=condition=Ready --timeout=2m
  xenosctl wait serviceinstance web db --for=condition=Ready=False
  xenosctl wait si/web --for=delete`,
    )
    .action(async (kindArg: string, nameArgs: string[], opts: { for?: string; timeout: string }) => {
      const what = parseWaitFor(opts.for);
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      const deadline = Date.now() + timeoutMs;
      for (const g of parseTypeNames([kindArg, ...nameArgs])) {
        const kind = await ctx.resolver().resolve(g.kind, { signal: ctx.signal });
        if (g.names.length === 0) throw new UsageError(`wait needs object names, e.g. ${g.kind}/NAME`);
        for (const name of g.names) {
          const namespace = kind.namespaced ? ctx.settings().namespace : undefined;
          await waitFor(ctx.client(), { kind, name, namespace }, what, {
            timeoutMs: Math.max(1, deadline - Date.now()),
            signal: ctx.signal,
            timeoutText: opts.timeout,
          });
          ctx.out(`${qualifiedSingular(kind)}/${name} condition met\n`);
        }
      }
    });
}
