// `xenosctl cordon HOST...` and `xenosctl uncordon HOST...`: keep new instances off hosts (the Host's
// spec.unschedulable, which placement and image distribution already honour), or let them back. Running
// instances stay where they are; `xenosctl drain` moves them. Every host is looked up before any is
// changed, so a misspelt name changes nothing.

import type { Command } from 'commander';
import { isNotFound } from '../../client/errors.ts';
import type { Host } from '../../model/host.ts';
import { HOST } from '../../model/kinds.ts';
import type { CommandContext } from '../context.ts';
import { CliError } from '../errors.ts';

/** A host is cordoned when it is unschedulable, or draining (spec.drain implies unschedulable). */
export function isCordoned(host: Host): boolean {
  return Boolean(host.spec?.unschedulable || host.spec?.drain);
}

/** The Host called `name`, or a CliError saying there is none. */
export async function getHost(ctx: CommandContext, name: string): Promise<Host> {
  try {
    return await ctx.client().get(HOST, name, { signal: ctx.signal });
  } catch (err) {
    if (isNotFound(err))
      throw new CliError(`host "${name}" not found (xenosctl get hosts lists the cluster's hosts)`);
    throw err;
  }
}

/** Cordons (or uncordons) `host`; says what it did on stdout, kubectl's way: `host/a cordoned`. */
export async function setCordon(ctx: CommandContext, host: Host, cordon: boolean): Promise<void> {
  const name = host.metadata.name;
  const word = cordon ? 'cordoned' : 'uncordoned';
  if (isCordoned(host) === cordon) {
    ctx.out(`host/${name} already ${word}\n`);
    return;
  }
  // Uncordoning also clears spec.drain, which would keep the host unschedulable on its own.
  const spec = cordon
    ? { unschedulable: true }
    : { unschedulable: false, ...(host.spec?.drain ? { drain: false } : {}) };
  await ctx.client().patch(HOST, name, { spec }, { signal: ctx.signal });
  ctx.out(`host/${name} ${word}\n`);
}

export function registerCordon(program: Command, ctx: CommandContext): void {
  for (const cordon of [true, false]) {
    const verb = cordon ? 'cordon' : 'uncordon';
    program
      .command(verb)
      .description(
        cordon
          ? 'Mark hosts unschedulable: no new instance is placed there (running ones stay)'
          : 'Mark hosts schedulable again',
      )
      .argument('<hosts...>', 'host names (xenosctl get hosts)')
      .addHelpText(
        'after',
        cordon
          ? `
Sets the Host's spec.unschedulable. Placement then skips the host, and a migration without a target
host never picks it. To move the instances that run there, use xenosctl drain.

Examples:
  xenosctl cordon host-2
  xenosctl get hosts          # UNSCHEDULABLE true`
          : `
Clears the Host's spec.unschedulable (and spec.drain). Instances moved away by a drain do not come back.

Examples:
  xenosctl uncordon host-2`,
      )
      .action(async (names: string[]) => {
        const hosts: Host[] = [];
        for (const name of names) hosts.push(await getHost(ctx, name));
        for (const host of hosts) await setCordon(ctx, host, cordon);
      });
  }
}
