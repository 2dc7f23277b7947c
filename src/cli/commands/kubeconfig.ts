// `xenosctl kubeconfig [--name NAME]`: a kubeconfig for the real kubectl, pointing at the xenosd
// this xenosctl talks to, with its token: `xenosctl kubeconfig > ~/.kube/xenos && KUBECONFIG=...`.

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { CommandContext } from '../context.ts';
import { CliError } from '../errors.ts';
import { toYaml } from '../printers/yaml.ts';

export function kubeconfig(opts: {
  name: string;
  server: string;
  token: string;
  namespace: string;
  /** PEM of the CA that signed the server's certificate (https). */
  ca?: Buffer;
}): unknown {
  const user = `${opts.name}-admin`;
  const cluster: Record<string, string> = { server: opts.server };
  if (opts.ca) cluster['certificate-authority-data'] = opts.ca.toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: opts.name, cluster }],
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
      const ca = s.caFile && s.server.startsWith('https:') ? readFileSync(s.caFile) : undefined;
      const config = kubeconfig({
        name: opts.name,
        server: s.server,
        token: s.token,
        namespace: s.namespace,
        ca,
      });
      ctx.out(toYaml(config));
    });
}
