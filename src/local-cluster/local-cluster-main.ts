// `npm start`: a local Xenos cluster in one command (see local-cluster.ts). Starts N hosts
// (--hosts, default 3) under ./.xenos/cluster with a fresh cluster key, applies the example service
// (--manifests, default manifests/web), prints where it answers, and on Ctrl-C stops everything.

import { Command, CommanderError } from 'commander';
import { LocalCluster } from './local-cluster.ts';

const program = new Command('npm start --')
  .description('Start a local Xenos cluster of N hosts and run the example service on it')
  .option('--hosts <n>', 'how many xenosd hosts', '3')
  .option('--dir <dir>', 'where the hosts keep their data (replaced on every start)', './.xenos/cluster')
  .option('--manifests <path>', 'what to apply once the hosts are up', 'manifests/web')
  .option('--host-timeout <duration>', 'a host silent this long is NotReady', '5s')
  .exitOverride();

async function main(): Promise<void> {
  try {
    program.parse(process.argv.slice(2), { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.code === 'commander.helpDisplayed' ? 0 : 2);
    throw err;
  }
  const o = program.opts<{ hosts: string; dir: string; manifests: string; hostTimeout: string }>();
  const cluster = new LocalCluster({ dir: o.dir, hosts: Number(o.hosts), hostTimeout: o.hostTimeout });
  const abort = new AbortController();
  let stopping: Promise<void> | undefined;
  const stop = (why: string) => {
    abort.abort(new Error(why));
    stopping ??= (async () => {
      process.stderr.write(
        `\n${why}: deleting the instances and stopping ${cluster.hosts.length} hosts...\n`,
      );
      await cluster.stop();
      process.stderr.write('stopped.\n');
    })();
    return stopping;
  };
  process.on('SIGINT', () => {
    stop('Ctrl-C').then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
  process.on('SIGTERM', () => {
    stop('SIGTERM').then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
  try {
    await cluster.start({ signal: abort.signal });
    process.stderr.write(`applying ${o.manifests}...\n`);
    process.stdout.write(await cluster.ctl(['apply', '-f', o.manifests]));
    const ready = await cluster.waitReady(180_000, abort.signal);
    process.stdout.write(await cluster.summary(ready));
  } catch (err) {
    if (abort.signal.aborted) return;
    process.stderr.write(`local cluster: ${(err as Error).message}\n`);
    await stop('error');
    process.exit(1);
  }
}

main().catch((err) => {
  process.stderr.write(`local cluster: ${err?.message ?? err}\n`);
  process.exit(1);
});
