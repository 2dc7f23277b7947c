// `xenosctl drain HOST [--timeout 10m] [--mode auto|live|cold]`: empty a host, the way kubectl drains a
// node — cordon it, move every instance bound to it (spec.host, including instances pinned there by an
// earlier migration), wait, and report what could not move and why. Each move is one ServiceMigration
// without a target host (the source host picks one by placement: live, Ready, not cordoned, with room and
// the instance's driver), labelled xenos.io/drain=HOST and kept after it ends; a migration of the instance
// already under way is followed instead of a second one. Progress goes to stderr, one line per instance;
// the outcome to stdout. Exit 1 when an instance is still on the host at the end.

import type { Command } from 'commander';
import type { WatchEvent } from '../../client/client.ts';
import { ApiStatusError } from '../../client/errors.ts';
import { DRAIN_LABEL, drainMigration } from '../../model/drain.ts';
import { SERVICE_INSTANCE, SERVICE_MIGRATION } from '../../model/kinds.ts';
import type { ServiceInstance } from '../../model/service-instance.ts';
import type { ServiceMigration } from '../../model/service-migration.ts';
import { parseDuration, parseMigrationMode } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';
import { isFinished, MigrationBoard, migrationLine, migrationReason } from '../migration-progress.ts';
import { listThenWatch } from '../watch-loop.ts';
import { getHost, setCordon } from './cordon.ts';

/** spec.timeoutSeconds' bounds (crds/servicemigrations.xenos.io.yaml). */
const MAX_TIMEOUT_SECONDS = 86_400;

interface DrainOptions {
  timeout: string;
  mode: string;
}

/** One instance's move: the migration that carries it (once created), or why none could be. */
interface Move {
  label: string;
  namespace: string;
  instance: string;
  migration?: string;
  last?: ServiceMigration;
  notStarted?: string;
}

export function registerDrain(program: Command, ctx: CommandContext): void {
  program
    .command('drain')
    .description('Cordon a host, then move every instance off it and wait')
    .argument('<host>', 'the host to empty (xenosctl get hosts)')
    .option('--timeout <duration>', 'how long to wait for all the instances to move (e.g. 10m, 1h)', '10m')
    .option('--mode <mode>', 'auto (live where the driver can, cold otherwise), live or cold', 'auto')
    .addHelpText(
      'after',
      `
Drain cordons the host (as xenosctl cordon), then creates one ServiceMigration per instance bound to it,
without a target host: the host picks one by placement (never a cordoned one). It shows each move on
stderr until all have ended or --timeout passes, prints each instance moved, and exits 1 naming every
instance that could not move and why. The host stays cordoned; xenosctl uncordon lets instances back.
The migrations stay (label ${DRAIN_LABEL}=HOST): xenosctl get smig -l ${DRAIN_LABEL}=HOST -A.

Examples:
  xenosctl drain host-2
  xenosctl drain host-2 --mode cold --timeout 30m`,
    )
    .action(async (hostName: string, opts: DrainOptions) => {
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      if (timeoutMs <= 0) throw new UsageError('--timeout must be longer than 0');
      const mode = parseMigrationMode(opts.mode);
      const deadline = Date.now() + timeoutMs;
      const host = await getHost(ctx, hostName);
      await setCordon(ctx, host, true);

      const tried = new Set<string>();
      const moves: Move[] = [];
      // A round per listing: instances bound to the host later (pinned there by name) get a round too.
      for (;;) {
        const round = (await boundInstances(ctx, hostName)).filter((i) => !tried.has(keyOf(i)));
        if (round.length === 0) break;
        for (const i of round) tried.add(keyOf(i));
        const started = await startMoves(ctx, round, mode, hostName, deadline);
        moves.push(...started);
        await follow(ctx, started, deadline);
        if (Date.now() >= deadline) break;
      }
      report(ctx, hostName, moves, opts.timeout);
    });
}

function keyOf(o: { metadata: { namespace?: string; name: string } }): string {
  return `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;
}

/** The instances bound to the host (not those being deleted: they are leaving anyway). */
async function boundInstances(ctx: CommandContext, host: string): Promise<ServiceInstance[]> {
  const list = await ctx.client().list(SERVICE_INSTANCE, { signal: ctx.signal });
  return list.items
    .filter((i) => i.spec?.host === host && !i.metadata.deletionTimestamp)
    .sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
}

/** Creates a migration per instance, or adopts the one already moving it. */
async function startMoves(
  ctx: CommandContext,
  instances: ServiceInstance[],
  mode: ReturnType<typeof parseMigrationMode>,
  host: string,
  deadline: number,
): Promise<Move[]> {
  const client = ctx.client();
  const existing = (await client.list(SERVICE_MIGRATION, { signal: ctx.signal })).items.filter(
    (m) => !isFinished(m) && !m.metadata.deletionTimestamp,
  );
  const moves: Move[] = [];
  for (const i of instances) {
    const namespace = i.metadata.namespace ?? 'default';
    const move: Move = { label: keyOf(i), namespace, instance: i.metadata.name };
    moves.push(move);
    const under = existing.find(
      (m) =>
        (m.metadata.namespace ?? 'default') === namespace && m.spec?.instanceRef?.name === i.metadata.name,
    );
    if (under) {
      move.migration = under.metadata.name;
      move.last = under;
      continue;
    }
    const timeoutSeconds = Math.min(
      MAX_TIMEOUT_SECONDS,
      Math.max(1, Math.ceil((deadline - Date.now()) / 1000)),
    );
    const migration = drainMigration(i, host, { mode, timeoutSeconds });
    try {
      const created = await client.create(SERVICE_MIGRATION, migration, { namespace, signal: ctx.signal });
      move.migration = created.metadata.name;
      move.last = created;
    } catch (err) {
      if (!(err instanceof ApiStatusError)) throw err;
      move.notStarted = `the server refused its ServiceMigration: ${err.message}`;
    }
  }
  return moves;
}

/** Shows the moves until every one has ended, or the deadline. */
async function follow(ctx: CommandContext, moves: Move[], deadline: number): Promise<void> {
  const board = new MigrationBoard(
    ctx.io,
    moves.map((m) => m.label),
  );
  const byMigration = new Map<string, Move>();
  for (const move of moves) {
    if (move.notStarted) board.set(move.label, `not moved: ${move.notStarted}`);
    else byMigration.set(`${move.namespace}/${move.migration}`, move);
  }
  const see = (m: ServiceMigration): void => {
    const move = byMigration.get(keyOf(m));
    if (!move) return;
    move.last = m;
    board.update(move.label, m);
  };
  const allDone = () => [...byMigration.values()].every((m) => m.last && isFinished(m.last));
  if (byMigration.size === 0) return;
  const timeout = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
  const signal = AbortSignal.any([ctx.signal, timeout]);
  const finished = new Set<string>();
  const onObject = (m: ServiceMigration): void => {
    // Print each migration's end once, even when a relist shows it again.
    if (finished.has(keyOf(m))) return;
    if (isFinished(m)) finished.add(keyOf(m));
    see(m);
  };
  await listThenWatch(
    ctx.client(),
    SERVICE_MIGRATION,
    { signal },
    {
      onList: (items) => {
        for (const m of items as ServiceMigration[]) onObject(m);
        return allDone();
      },
      onEvent: (ev: WatchEvent) => {
        if (ev.type !== 'DELETED') onObject(ev.object as ServiceMigration);
        return allDone();
      },
    },
  );
  if (ctx.signal.aborted) throw ctx.signal.reason;
  // The outcomes go to stdout once the board on stderr is complete: a line written under a board that is
  // still redrawn in place (both on one terminal) would be drawn over.
  for (const move of moves) {
    const m = move.last;
    if (m?.status?.phase === 'Succeeded')
      ctx.out(`serviceinstance/${move.instance} moved to ${m.status.targetHost ?? 'another host'}\n`);
  }
}

/** The outcome: `host/NAME drained`, or an error naming every instance that did not move, and why. */
function report(ctx: CommandContext, host: string, moves: Move[], timeoutText: string): void {
  const stuck: string[] = [];
  for (const move of moves) {
    const m = move.last;
    if (move.notStarted) stuck.push(`${move.label}: ${move.notStarted}`);
    else if (m?.status?.phase === 'Failed') {
      // The controller's message names the migration.
      stuck.push(`${move.label}: ${migrationReason(m) ?? `servicemigration ${move.migration} failed`}`);
    } else if (m?.status?.phase !== 'Succeeded') {
      stuck.push(
        `${move.label}: not moved within --timeout ${timeoutText}: ${m ? migrationLine(m) : 'Pending'} (servicemigration ${move.namespace}/${move.migration} goes on until its spec.timeoutSeconds)`,
      );
    }
  }
  if (stuck.length === 0) {
    ctx.out(
      moves.length === 0
        ? `host/${host} drained (no instances were bound to it)\n`
        : `host/${host} drained\n`,
    );
    return;
  }
  throw new CliError(
    `${stuck.length} of ${moves.length} instance${moves.length === 1 ? '' : 's'} could not move off host ${host}; it stays cordoned`,
    { details: stuck },
  );
}
