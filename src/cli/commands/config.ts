// `xenosctl config view | set-server URL | set-token TOKEN | set-namespace NS`: read and edit the
// config file (--config, XENOS_CONFIG or ~/.config/xenos/config.yaml; format in ../config.ts).

import type { Command } from 'commander';
import { type ConfigFile, configPath, readConfigFile, serverFromAddr, writeConfigFile } from '../config.ts';
import type { CommandContext } from '../context.ts';
import { toYaml } from '../printers/yaml.ts';

export function registerConfig(program: Command, ctx: CommandContext): void {
  const config = program.command('config').description('View or edit the xenosctl config file');
  const path = () => configPath(ctx.flags().config, ctx.io.env);
  const set = (field: keyof ConfigFile, value: string) => {
    const p = path();
    const cfg = readConfigFile(p) ?? {};
    cfg[field] = value;
    if (field === 'token') delete cfg.tokenFile;
    writeConfigFile(p, cfg);
    ctx.out(`${field} set in ${p}\n`);
  };
  config
    .command('view')
    .description('Print the config file and the settings in effect (the token redacted unless --raw)')
    .option('--raw', 'show the token')
    .action((opts: { raw?: boolean }) => {
      const s = ctx.settings();
      const file = readConfigFile(s.configPath);
      const token = s.token ? (opts.raw ? s.token : 'REDACTED') : '<none>';
      ctx.out(
        toYaml({
          file: s.configPath,
          fileContents: file
            ? { ...file, ...(file.token ? { token: opts.raw ? file.token : 'REDACTED' } : {}) }
            : null,
          inEffect: {
            server: `${s.server} (from ${s.sources.server})`,
            token: `${token}${s.sources.token ? ` (from ${s.sources.token})` : ''}`,
            namespace: s.namespace,
            certificateAuthority: s.caFile ?? '<none>',
          },
        }),
      );
    });
  config
    .command('set-server <url>')
    .description('Set the API address of a host, e.g. http://10.0.0.5:7443')
    .action((url: string) => set('server', serverFromAddr(url)));
  config
    .command('set-token <token>')
    .description('Set the bearer token')
    .action((token: string) => set('token', token));
  config
    .command('set-namespace <namespace>')
    .description('Set the default namespace')
    .action((ns: string) => set('namespace', ns));
}
