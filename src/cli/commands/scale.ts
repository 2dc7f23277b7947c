// `xenosctl scale KIND NAME --replicas N` (or KIND/NAME): sets the desired replica count through the
// object's scale subresource, as `kubectl scale` does, so it works for any kind that declares one
// (ServiceDeployment). `--current-replicas M` makes it a precondition: nothing changes unless the count
// is M now. Prints `servicedeployment.xenos.io/web scaled`.

import type { Command } from 'commander';
import { XenosClient } from '../../client/client.ts';
import { isNotFound } from '../../client/errors.ts';
import { parseTypeNames } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';
import { qualifiedSingular } from '../resources.ts';

interface ScaleOptions {
  replicas?: string;
  currentReplicas?: string;
}

function count(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value))
    throw new UsageError(`${flag} must be a whole number, 0 or more (got "${value}")`);
  return Number(value);
}

interface Scale {
  metadata: { resourceVersion?: string };
  spec: { replicas: number };
}

export function registerScale(program: Command, ctx: CommandContext): void {
  program
    .command('scale')
    .description('Set the number of replicas of a ServiceDeployment (its scale subresource)')
    .argument('<kind>', 'the kind (servicedeployment, sd) or KIND/NAME')
    .argument('[names...]', 'the names')
    .option('--replicas <n>', 'the number of replicas wanted')
    .option('--current-replicas <n>', 'change nothing unless the current number is this')
    .addHelpText(
      'after',
      `
Examples:
  xenosctl scale servicedeployment web --replicas 4
  xenosctl scale sd/web --replicas 0 --current-replicas 4`,
    )
    .action(async (kindArg: string, nameArgs: string[], opts: ScaleOptions) => {
      const replicas = count(opts.replicas, '--replicas');
      if (replicas === undefined) throw new UsageError('give --replicas N');
      const current = count(opts.currentReplicas, '--current-replicas');
      const client = ctx.client();
      for (const g of parseTypeNames([kindArg, ...nameArgs])) {
        if (g.names.length === 0) throw new UsageError(`give the names of the ${g.kind} to scale`);
        const kind = await ctx.resolver().resolve(g.kind, { signal: ctx.signal });
        const namespace = kind.namespaced ? ctx.settings().namespace : undefined;
        for (const name of g.names) {
          const path = XenosClient.path(kind, { namespace, name, subresource: 'scale' });
          const label = `${qualifiedSingular(kind)}/${name}`;
          let scale: Scale;
          try {
            scale = await client.request<Scale>('GET', path, { signal: ctx.signal });
          } catch (err) {
            if (isNotFound(err))
              throw new CliError(
                `${label} not found, or ${kind.plural} cannot be scaled (no scale subresource)`,
              );
            throw err;
          }
          if (current !== undefined && scale.spec.replicas !== current) {
            throw new CliError(`${label} has ${scale.spec.replicas} replica(s), not ${current}: not scaled`);
          }
          // The count read is the one changed: a concurrent change makes this a conflict, not a lost write.
          const metadata = current !== undefined ? { resourceVersion: scale.metadata.resourceVersion } : {};
          await client.request('PATCH', path, {
            body: { metadata, spec: { replicas } },
            contentType: 'application/merge-patch+json',
            signal: ctx.signal,
          });
          ctx.out(`${label} scaled\n`);
        }
      }
    });
}
