// xenosctl, the command-line client of xenosd, shaped like kubectl: `xenosctl [global options]
// <command>`. This file builds the commander program and turns every failure into one line on
// stderr (`error: ...`) and an exit code: 0 ok, 1 failure (or, for diff, a difference), 2 usage.
// Set XENOS_DEBUG=1 to see stack traces.

import { Command, CommanderError, Option } from 'commander';
import { registerApply } from './commands/apply.ts';
import { registerConfig } from './commands/config.ts';
import { registerCordon } from './commands/cordon.ts';
import { registerDelete } from './commands/delete.ts';
import { registerDescribe } from './commands/describe.ts';
import { registerDiff } from './commands/diff.ts';
import { registerDiscover } from './commands/discover.ts';
import { registerDrain } from './commands/drain.ts';
import { registerGet } from './commands/get.ts';
import { registerImage } from './commands/image.ts';
import { registerImagePull } from './commands/image-pull.ts';
import { registerKubeconfig } from './commands/kubeconfig.ts';
import { registerLogs } from './commands/logs.ts';
import { registerMigrate } from './commands/migrate.ts';
import { registerScale } from './commands/scale.ts';
import { registerVersion } from './commands/version.ts';
import { registerWait } from './commands/wait.ts';
import { CommandContext, type Io, VERSION_STRING } from './context.ts';
import { CliError } from './errors.ts';

export function buildProgram(io: Io, signal: AbortSignal): { program: Command; ctx: CommandContext } {
  const program = new Command('xenosctl');
  const ctx = new CommandContext({ io, program, signal });
  program
    .description('Manage Xenos services on a peer-to-peer cloud of hosts (any host answers)')
    .version(VERSION_STRING, '--version', 'print the client version')
    .option(
      '--server <url>',
      'the API of a xenosd (env XENOS_SERVER; default: ./.xenos/api.addr or http://127.0.0.1:7443)',
    )
    .option('--token <token>', 'bearer token (env XENOS_TOKEN; default: ./.xenos/admin.token)')
    .option('-n, --namespace <namespace>', 'namespace (env XENOS_NAMESPACE; default "default")')
    .addOption(
      new Option('--config <file>', 'config file (env XENOS_CONFIG; default ~/.config/xenos/config.yaml)'),
    )
    .option('--certificate-authority <file>', 'PEM CA to trust for an https server (env XENOS_CA)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .addHelpText(
      'after',
      `
Examples:
  xenosctl apply -f manifests/web.yaml
  xenosctl get serviceinstances -o wide
  xenosctl wait si/web --for=condition=Ready --timeout=2m
  xenosctl describe si web
  xenosctl logs web -f
  xenosctl migrate web node-2 --wait
  xenosctl discover web.http
  xenosctl image push ./web-root
  xenosctl image ls
  xenosctl cordon host-2
  xenosctl drain host-2 --timeout 10m
  xenosctl kubeconfig > xenos.kubeconfig`,
    );
  registerApply(program, ctx);
  registerDiff(program, ctx);
  registerGet(program, ctx);
  registerDescribe(program, ctx);
  registerDelete(program, ctx);
  registerScale(program, ctx);
  registerWait(program, ctx);
  registerImage(program, ctx);
  registerLogs(program, ctx);
  registerMigrate(program, ctx);
  registerDiscover(program, ctx);
  registerCordon(program, ctx);
  registerDrain(program, ctx);
  registerImagePull(program, ctx);
  registerKubeconfig(program, ctx);
  registerVersion(program, ctx);
  registerConfig(program, ctx);
  // Sub-commands share the program's output and exit handling.
  for (const c of program.commands) {
    c.exitOverride()
      .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
      .showHelpAfterError(`(run xenosctl ${c.name()} --help for usage and examples)`);
    for (const sub of c.commands)
      sub.exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  }
  return { program, ctx };
}

/** Runs xenosctl with `argv` (without node and script); resolves to the exit code. */
export async function runCli(
  argv: string[],
  io: Io,
  signal: AbortSignal = new AbortController().signal,
): Promise<number> {
  const { program, ctx } = buildProgram(io, signal);
  if (argv.length === 0) {
    // As kubectl: no command prints the overview.
    io.stdout(program.helpInformation());
    return 0;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    return report(err, io);
  } finally {
    ctx.close();
  }
}

function report(err: unknown, io: Io): number {
  const debug = io.env.XENOS_DEBUG === '1';
  if (err instanceof CommanderError) {
    // commander already printed its message ("error: unknown option ...").
    if (
      err.code === 'commander.helpDisplayed' ||
      err.code === 'commander.version' ||
      err.code === 'commander.help'
    ) {
      return 0;
    }
    return 2;
  }
  if (err instanceof CliError) {
    if (err.message) {
      io.stderr(`error: ${err.message}\n`);
      for (const d of err.details) io.stderr(`  ${d}\n`);
    }
    if (debug)
      io.stderr(`${err.stack}\n${err.cause ? `cause: ${(err.cause as Error).stack ?? err.cause}\n` : ''}`);
    return err.exitCode;
  }
  if (err instanceof Error && err.name === 'AbortError') return 130;
  io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  if (debug && err instanceof Error) io.stderr(`${err.stack}\n`);
  return 1;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The process entry point (bin/xenosctl.js). */
export async function main(): Promise<void> {
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  const io: Io = {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
    readStdin,
    stderrTTY: process.stderr.isTTY === true,
    columns: process.stderr.columns,
    rows: process.stderr.rows,
  };
  const code = await runCli(process.argv.slice(2), io, abort.signal);
  process.exitCode = abort.signal.aborted && code === 0 ? 130 : code;
}
