// `xenosctl discover TYPE [-o json|yaml|wide]`: the live endpoints of a service type, found through the
// DHT by whichever host the client talks to (GET /apis/xenos.io/v1alpha1/namespaces/{ns}/discover/{type});
// the host need not run any of them. Prints one row per instance (HOST and PEER with -o wide).

import type { Command } from 'commander';
import type { DiscoveryResult } from '../../model/discovery.ts';
import { parseDuration, parseOutput } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import { formatTable } from '../printers/table.ts';
import { toJson, toYaml } from '../printers/yaml.ts';

export function registerDiscover(program: Command, ctx: CommandContext): void {
  program
    .command('discover')
    .description('List the live endpoints of a service type, found through the DHT (from any host)')
    .argument('<type>', "the service type (a template's spec.serviceType, or the template's name)")
    .option('-o, --output <format>', 'wide, json or yaml')
    .option('--timeout <duration>', 'how long the DHT query may take', '5s')
    .addHelpText(
      'after',
      `
Examples:
  xenosctl discover web.http
  xenosctl discover web.http -o json`,
    )
    .action(async (type: string, opts: { output?: string; timeout: string }) => {
      const format = parseOutput(opts.output);
      if (format.kind === 'name' || format.kind === 'jsonpath')
        throw new UsageError('discover prints -o wide, json or yaml');
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      const namespace = ctx.settings().namespace;
      const result = await ctx
        .client()
        .request<DiscoveryResult>(
          'GET',
          `/apis/xenos.io/v1alpha1/namespaces/${encodeURIComponent(namespace)}/discover/${encodeURIComponent(type)}`,
          {
            query: { timeoutSeconds: Math.max(1, Math.ceil(timeoutMs / 1000)) },
            timeoutMs: timeoutMs + 5000,
            signal: ctx.signal,
          },
        );
      if (format.kind === 'json') return ctx.out(toJson(result));
      if (format.kind === 'yaml') return ctx.out(toYaml(result));
      if (result.items.length === 0) {
        ctx.err(`No live endpoints of service type "${type}" in namespace ${namespace}.\n`);
        return;
      }
      const headers = ['INSTANCE', 'ENDPOINTS', ...(format.wide ? ['HOST', 'PEER'] : [])];
      const rows = result.items.map((i) => [
        i.instance,
        i.endpoints.join(','),
        ...(format.wide ? [i.host ?? '<unknown>', i.peerId ?? '<none>'] : []),
      ]);
      ctx.out(formatTable(headers, rows));
    });
}
