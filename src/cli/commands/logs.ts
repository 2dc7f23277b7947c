// `xenosctl logs NAME [-f] [--tail N] [--limit-bytes N]`: what an instance's domain printed (stdout and
// stderr), from whichever host the client talks to: that host reads it from its driver or forwards the
// request to the host that runs the instance (GET .../serviceinstances/{name}/log). With -f it keeps
// printing new output until Ctrl-C or until the instance's domain is gone.

import { StringDecoder } from 'node:string_decoder';
import type { Command } from 'commander';
import { ApiStatusError } from '../../client/errors.ts';
import { SERVICE_INSTANCE } from '../../model/kinds.ts';
import type { CommandContext } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';

const INSTANCE_ALIASES = new Set(
  [SERVICE_INSTANCE.singular, SERVICE_INSTANCE.plural].flatMap((n) => [n, `${n}.${SERVICE_INSTANCE.group}`]),
);
for (const s of SERVICE_INSTANCE.shortNames) INSTANCE_ALIASES.add(s);

/** `web`, `si/web` or `serviceinstance/web` → `web`. */
export function instanceName(arg: string): string {
  const slash = arg.indexOf('/');
  if (slash < 0) return arg;
  const kind = arg.slice(0, slash).toLowerCase();
  const name = arg.slice(slash + 1);
  if (!INSTANCE_ALIASES.has(kind))
    throw new UsageError(`logs are kept for service instances only, not "${arg.slice(0, slash)}"`);
  if (!name) throw new UsageError(`"${arg}" names no instance: write si/NAME`);
  return name;
}

function nonNegative(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
      throw new UsageError(`${flag} must be a non-negative whole number, not "${value}"`);
    return n;
  };
}

export function registerLogs(program: Command, ctx: CommandContext): void {
  program
    .command('logs')
    .description("Print the output (stdout and stderr) of an instance's domain")
    .argument('<instance>', 'the ServiceInstance: NAME or si/NAME')
    .option('-f, --follow', 'keep printing new output until Ctrl-C or until the domain is gone')
    .option('--tail <lines>', 'only the last N lines of stdout and of stderr', nonNegative('--tail'))
    .option('--limit-bytes <bytes>', 'stop after this many bytes', nonNegative('--limit-bytes'))
    .addHelpText(
      'after',
      `
Any host answers: one that does not run the instance fetches the log from the one that does.

Examples:
  xenosctl logs web-1
  xenosctl logs web-1 -f --tail 20
  xenosctl logs si/web-1 -n staging --tail 100`,
    )
    .action(async (arg: string, opts: { follow?: boolean; tail?: number; limitBytes?: number }) => {
      const name = instanceName(arg);
      if (opts.limitBytes === 0) throw new UsageError('--limit-bytes must be greater than zero');
      const namespace = ctx.settings().namespace;
      const path = `/apis/xenos.io/v1alpha1/namespaces/${encodeURIComponent(namespace)}/serviceinstances/${encodeURIComponent(name)}/log`;
      let body: AsyncIterable<Buffer>;
      try {
        body = await ctx.client().stream(path, {
          signal: ctx.signal,
          query: {
            follow: opts.follow ? 'true' : undefined,
            tailLines: opts.tail,
            limitBytes: opts.limitBytes,
          },
        });
      } catch (err) {
        if (err instanceof ApiStatusError && err.code === 404) {
          throw new CliError(
            `instance ${name} not found in namespace ${namespace} (see xenosctl get serviceinstances)`,
          );
        }
        if (ctx.signal.aborted) return;
        throw err;
      }
      const text = new StringDecoder('utf8');
      for await (const chunk of body) ctx.out(text.write(chunk));
      const rest = text.end();
      if (rest) ctx.out(rest);
    });
}
