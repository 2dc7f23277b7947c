// `xenosctl migrate INSTANCE [HOST] [--mode live|cold|auto] [--wait] [--timeout D]`: asks for an instance
// to move to HOST (or to a host placement picks) by creating a ServiceMigration (a generated name, kept
// after it ends; `xenosctl get servicemigrations` lists them) and prints its name. With --wait it follows
// the migration — a progress bar on a terminal, plain lines otherwise — and returns 0 only once it
// Succeeded AND the instance's status on the host this command talks to names the target, with
// endpoints: what a client reads next already points at the new host. A Failed migration exits 1 with
// its reason.

import type { Command } from 'commander';
import type { XenosClient } from '../../client/client.ts';
import { isNotFound } from '../../client/errors.ts';
import { SERVICE_INSTANCE, SERVICE_MIGRATION } from '../../model/kinds.ts';
import type { ServiceMigration } from '../../model/service-migration.ts';
import { parseDuration, parseMigrationMode } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';
import type { ProgressBar } from '../progress-bar.ts';
import { progressBar } from '../pull-progress.ts';

const POLL_MS = 500;

interface MigrateOptions {
  mode: string;
  wait?: boolean;
  timeout: string;
}

export function registerMigrate(program: Command, ctx: CommandContext): void {
  program
    .command('migrate')
    .description('Move an instance to another host (creates a ServiceMigration)')
    .argument('<instance>', 'the ServiceInstance to move')
    .argument('[host]', 'the host to move it to (default: one placement picks, never its own)')
    .option('--mode <mode>', 'live, cold or auto (live where the driver can)', 'auto')
    .option('--wait', 'follow the migration until the instance runs on the target')
    .option('--timeout <duration>', 'the migration gives up after this long (and the instance stays)', '5m')
    .addHelpText(
      'after',
      `
With --wait, the exit code is 0 only once the migration Succeeded and the instance's status, as this
server sees it, names the target host and its endpoints there; 1 with the reason when it Failed.

Examples:
  xenosctl migrate web-1 node-2 --wait
  xenosctl migrate hadoop-master --mode cold -n hadoop
  xenosctl get servicemigrations`,
    )
    .action(async (instance: string, host: string | undefined, opts: MigrateOptions) => {
      const mode = parseMigrationMode(opts.mode);
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      if (timeoutMs < 1000 || timeoutMs > 86_400_000)
        throw new UsageError(`--timeout: ${opts.timeout} is not between 1s and 24h`);
      const namespace = ctx.settings().namespace;
      const client = ctx.client();
      try {
        await client.get(SERVICE_INSTANCE, instance, { namespace, signal: ctx.signal });
      } catch (err) {
        if (isNotFound(err))
          throw new CliError(
            `no ServiceInstance "${instance}" in namespace ${namespace} (xenosctl get si lists them)`,
          );
        throw err;
      }
      const created = await client.create(
        SERVICE_MIGRATION,
        {
          apiVersion: `${SERVICE_MIGRATION.group}/${SERVICE_MIGRATION.version}`,
          kind: SERVICE_MIGRATION.kind,
          metadata: { generateName: `${instance.slice(0, 40)}-`, namespace },
          spec: {
            instanceRef: { name: instance },
            ...(host ? { targetHost: host } : {}),
            mode,
            timeoutSeconds: Math.ceil(timeoutMs / 1000),
          },
        },
        { namespace, signal: ctx.signal },
      );
      const name = created.metadata.name;
      ctx.out(`servicemigration.${SERVICE_MIGRATION.group}/${name} created\n`);
      if (opts.wait) await follow(ctx, client, created, namespace, timeoutMs + 30_000);
    });
}

/** Polls the migration until it ends, then the instance until it is seen on the target. */
async function follow(
  ctx: CommandContext,
  client: XenosClient,
  created: ServiceMigration,
  namespace: string,
  limitMs: number,
): Promise<void> {
  const name = created.metadata.name;
  const instance = created.spec!.instanceRef.name;
  const deadline = Date.now() + limitMs;
  let bar: ProgressBar | undefined;
  let m = created;
  try {
    for (;;) {
      const s = m.status;
      if (s?.progress && s.progress.stage !== 'image') {
        bar ??= progressBar(ctx.io, `moving ${instance} ${s.sourceHost ?? ''} → ${s.targetHost ?? ''}`);
        const at = Date.parse(s.progress.updatedAt);
        bar.update({
          bytes: s.progress.bytes,
          size: s.progress.total ?? 0,
          at: Number.isNaN(at) ? undefined : at,
        });
      }
      if (s?.phase === 'Failed') {
        const why =
          s.conditions?.find((c) => c.type === 'Migrated') ?? s.conditions?.find((c) => c.type === 'Ready');
        throw new CliError(
          `servicemigration ${name} failed: ${why?.message ?? 'no reason given'}${why ? ` (${why.reason})` : ''}`,
        );
      }
      if (s?.phase === 'Succeeded') break;
      await tick(
        ctx,
        deadline,
        `servicemigration ${name} did not end in time (phase ${s?.phase ?? 'Pending'})`,
      );
      m = await client.get(SERVICE_MIGRATION, name, { namespace, signal: ctx.signal });
    }
  } finally {
    bar?.done();
  }
  const target = m.status?.targetHost ?? '';
  for (;;) {
    const i = await client.get(SERVICE_INSTANCE, instance, { namespace, signal: ctx.signal });
    if (i.status?.host === target && (i.status.endpoints?.length ?? 0) > 0) break;
    await tick(ctx, deadline, `${instance} moved to ${target}, but this server does not show it there yet`);
  }
  const s = m.status!;
  const figures = [
    s.downtimeMs !== undefined ? `downtime ${s.downtimeMs} ms` : '',
    s.bytesTransferred !== undefined ? `${s.bytesTransferred} bytes moved` : '',
  ].filter(Boolean);
  ctx.out(`${instance} runs on ${target}${figures.length ? ` (${figures.join(', ')})` : ''}\n`);
}

async function tick(ctx: CommandContext, deadline: number, late: string): Promise<void> {
  if (Date.now() >= deadline) throw new CliError(late);
  await new Promise((r) => setTimeout(r, POLL_MS));
  ctx.signal.throwIfAborted();
}
