// `xenosctl kubeconfig [--name NAME]`: a kubeconfig for the real kubectl, pointing at the xenosd
// this xenosctl talks to, with its token: `xenosctl kubeconfig > ~/.kube/xenos && KUBECONFIG=...`.

import type { Command } from 'commander';
import type { CommandContext } from '../context.ts';
import { CliError } from '../errors.ts';
import { toYaml } from '../printers/yaml.ts';

export function kubeconfig(opts: {
  name: string;
  server: string;
  token: string;
  namespace: string;
}): unknown {
  const user = `${opts.name}-admin`;
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: opts.name, cluster: { server: opts.server } }],
    users: [{ name: user, user: { token: opts.token } }],
    contexts: [{ name: opts.name, context: { cluster: opts.name, user, namespace: opts.namespace } }],
    'current-context': opts.name,
    preferences: {},
  };
}

export function registerKubeconfig(program: Command, ctx: CommandContext): void {
  program
    .command('kubeconfig')
    .description('Print a kubeconfig with which kubectl can manage this host')
    .option('--name <name>', 'the cluster, user and context name', 'xenos')
    .addHelpText(
      'after',
      `
Examples:
  xenosctl kubeconfig > ~/.kube/xenos.yaml
  KUBECONFIG=~/.kube/xenos.yaml kubectl get serviceinstances`,
    )
    .action((opts: { name: string }) => {
      const s = ctx.settings();
      if (!s.token) {
        throw new CliError(
          "no token to put in the kubeconfig: set --token or XENOS_TOKEN (see the data dir's admin.token)",
        );
      }
      ctx.out(
        toYaml(kubeconfig({ name: opts.name, server: s.server, token: s.token, namespace: s.namespace })),
      );
    });
}
