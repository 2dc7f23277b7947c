// `xenosctl delete KIND NAME... | KIND/NAME... | -f FILE [--wait] [--timeout]`: delete objects and,
// by default, wait until they are gone (finalizers done), as kubectl does.

import type { Command } from 'commander';
import { isNotFound } from '../../client/errors.ts';
import { parseDuration, parseTypeNames } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';
import { loadManifests } from '../manifests.ts';
import { qualifiedSingular, type ResolvedKind } from '../resources.ts';
import { waitFor } from '../waiters.ts';

interface DeleteOptions {
  filename?: string[];
  recursive?: boolean;
  wait: string | boolean;
  timeout: string;
  ignoreNotFound?: boolean;
  dryRun?: boolean;
}

function parseBool(v: string | boolean, flag: string): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new UsageError(`invalid ${flag} "${v}": expected true or false`);
}

export function registerDelete(program: Command, ctx: CommandContext): void {
  program
    .command('delete')
    .description('Delete objects by kind and name, or those a file describes')
    .argument('[kind]', 'the kind (any of its names), or KIND/NAME')
    .argument('[names...]', 'object names')
    .option('-f, --filename <path...>', 'delete the objects in these files or directories (- for stdin)')
    .option('-R, --recursive', 'descend into sub-directories of a -f directory')
    .option('--wait [bool]', 'wait until the objects are gone', 'true')
    .option('--timeout <duration>', 'how long to wait for each object to go', '60s')
    .option('--ignore-not-found', 'treat an absent object as deleted')
    .option('--dry-run', 'ask the server to check the deletion without doing it')
    .addHelpText(
      'after',
      `
Examples:
  xenosctl delete serviceinstance web
  xenosctl delete si/web st/web --wait=false
  xenosctl delete -f manifests/web.yaml --timeout=2m`,
    )
    .action(async (kindArg: string | undefined, nameArgs: string[], opts: DeleteOptions) => {
      const wait = parseBool(opts.wait, '--wait');
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      const targets: { kind: ResolvedKind; name: string; namespace?: string }[] = [];
      if (opts.filename?.length) {
        if (kindArg) throw new UsageError('give either -f FILE or KIND NAME..., not both');
        const objects = await loadManifests(ctx, opts.filename, {
          recursive: opts.recursive,
          resolver: ctx.resolver(),
        });
        for (const m of objects)
          targets.push({ kind: m.kind, name: m.name, namespace: m.namespace || undefined });
      } else {
        if (!kindArg) throw new UsageError('give KIND NAME..., KIND/NAME or -f FILE');
        for (const g of parseTypeNames([kindArg, ...nameArgs])) {
          if (g.names.length === 0) throw new UsageError(`give the names of the ${g.kind} to delete`);
          const kind = await ctx.resolver().resolve(g.kind, { signal: ctx.signal });
          const namespace = kind.namespaced ? ctx.settings().namespace : undefined;
          for (const name of g.names) targets.push({ kind, name, namespace });
        }
      }
      const client = ctx.client();
      const failures: string[] = [];
      for (const t of targets) {
        const label = `${qualifiedSingular(t.kind)} "${t.name}"`;
        try {
          await client.delete(t.kind, t.name, {
            namespace: t.namespace,
            dryRun: opts.dryRun,
            signal: ctx.signal,
          });
        } catch (err) {
          if (isNotFound(err)) {
            if (!opts.ignoreNotFound) failures.push(`${label} not found`);
            continue;
          }
          throw err;
        }
        ctx.out(`${label} deleted${opts.dryRun ? ' (server dry run)' : ''}\n`);
        if (wait && !opts.dryRun) {
          await waitFor(
            client,
            t,
            { kind: 'delete' },
            { timeoutMs, signal: ctx.signal, timeoutText: opts.timeout },
          );
        }
      }
      if (failures.length) {
        throw new CliError(failures.length === 1 ? failures[0] : `${failures.length} objects not found:`, {
          details: failures.length === 1 ? [] : failures,
        });
      }
    });
}
