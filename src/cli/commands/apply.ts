// `xenosctl apply -f FILE|DIR|- [-R] [--dry-run=none|client|server] [--wait [--timeout 5m]]`: create
// what is missing and merge-patch what differs, kubectl's client-side apply. Every document is checked
// first; if any is invalid, every problem is printed and nothing is applied. --wait then waits for the
// templates and instances to be Ready, with a progress bar while an image is pulled (apply/wait-ready.ts).

import type { Command } from 'commander';
import { type ApplyResult, applyObject as applyTo } from '../../client/apply.ts';
import type { XenosClient } from '../../client/client.ts';
import { LAST_APPLIED } from '../../client/three-way-patch.ts';
import { waitApplied } from '../apply/wait-ready.ts';
import { type DryRun, parseDryRun, parseDuration } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { CliError, UsageError } from '../errors.ts';
import { loadManifests, type ManifestObject } from '../manifests.ts';
import { qualifiedSingular } from '../resources.ts';
import { uploadLocalImages } from '../template-images.ts';

export const FIELD_MANAGER = 'xenosctl-client-side-apply';

/** Applies one checked object. Exported for the benchmark and for other tools. */
export function applyObject(
  client: XenosClient,
  m: ManifestObject,
  opts: { dryRun?: boolean; signal?: AbortSignal } = {},
): Promise<{ result: ApplyResult; object: unknown }> {
  return applyTo(client, m.kind, m.object, { ...opts, fieldManager: FIELD_MANAGER });
}

function suffix(dryRun: DryRun): string {
  return dryRun === 'client' ? ' (dry run)' : dryRun === 'server' ? ' (server dry run)' : '';
}

export function registerApply(program: Command, ctx: CommandContext): void {
  program
    .command('apply')
    .description('Create or update objects from YAML files, like kubectl apply')
    .option('-f, --filename <path...>', 'a file, a directory, or - for standard input (repeatable)')
    .option('-R, --recursive', 'descend into sub-directories of a -f directory')
    .option(
      '--dry-run [mode]',
      'none, client (check locally) or server (the server checks, saves nothing)',
      'none',
    )
    .option('--server-side', "apply on the server: the file's fields become this field manager's (see below)")
    .option('--force-conflicts', 'with --server-side: take fields other managers own instead of failing')
    .option('--field-manager <name>', 'with --server-side: who applies (default xenosctl)', 'xenosctl')
    .option('--wait', 'then wait until the templates and instances applied are Ready (a bar while pulling)')
    .option('--timeout <duration>', 'with --wait: give up after this long (e.g. 90s, 10m)', '5m')
    .addHelpText(
      'after',
      `
The configuration applied is kept in the annotation ${LAST_APPLIED}, so a field removed from the
file is removed from the object on the next apply. Fields set by others (status, defaults) stay.

--server-side sends the file to the server as a server-side apply, as kubectl apply --server-side
does: the server records the fields as the field manager's (metadata.managedFields), removes those
it applied before and no longer applies, and refuses to change a field another manager set to
another value ("conflict with ..."), unless --force-conflicts.

A ServiceTemplate whose spec.image.path is a file or directory on this machine has its image uploaded
to the host xenosctl talks to (once: a host holding it already is sent nothing; an interrupted upload
resumes), and is applied with spec.image.digest (and spec.image.format) instead of the path, so no host
ever reads this machine's path. A path this machine does not have is sent as it is: the hosts must have
it. Dry runs upload nothing.

Examples:
  xenosctl apply -f manifests/web.yaml
  xenosctl apply -R -f manifests/
  cat web.yaml | xenosctl apply -f -
  xenosctl apply -f web.yaml --dry-run=server
  xenosctl apply -f web.yaml --wait --timeout 10m
  xenosctl apply --server-side -f web.yaml
  xenosctl apply --server-side --force-conflicts --field-manager ci -f web.yaml`,
    )
    .action(async (opts: ApplyOptions) => {
      if (opts.forceConflicts && !opts.serverSide)
        throw new UsageError('--force-conflicts only works with --server-side');
      const dryRun = parseDryRun(opts.dryRun);
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      const resolver = dryRun === 'client' ? ctx.offlineResolver() : ctx.resolver();
      const objects = await loadManifests(ctx, opts.filename ?? [], { recursive: opts.recursive, resolver });
      if (dryRun === 'client') {
        for (const m of objects) ctx.out(`${qualifiedSingular(m.kind)}/${m.name} valid${suffix(dryRun)}\n`);
        return;
      }
      // Images on this machine are uploaded first; the template then names its image by digest alone.
      if (dryRun === 'none') await uploadLocalImages(ctx, objects);
      const failures: string[] = [];
      for (const m of objects) {
        try {
          const result = opts.serverSide
            ? await serverSide(ctx, m, { ...opts, dryRun: dryRun === 'server' })
            : (await applyObject(ctx.client(), m, { dryRun: dryRun === 'server', signal: ctx.signal }))
                .result;
          ctx.out(`${qualifiedSingular(m.kind)}/${m.name} ${result}${suffix(dryRun)}\n`);
        } catch (err) {
          if (!(err instanceof CliError)) throw err;
          // A connection failure would fail every object the same way: stop at once.
          if (err.name === 'ConnectionError') throw err;
          failures.push(`${m.file}:${m.line}: ${qualifiedSingular(m.kind)}/${m.name}: ${err.message}`);
          for (const d of err.details) failures.push(`  ${d}`);
        }
      }
      if (failures.length) {
        throw new CliError(
          `${failures.filter((f) => !f.startsWith('  ')).length} of ${objects.length} objects failed to apply:`,
          {
            details: failures,
          },
        );
      }
      if (opts.wait && dryRun === 'none')
        await waitApplied(ctx, objects, { timeoutMs, timeoutText: opts.timeout });
    });
}

/** One object by server-side apply; kubectl's word for what happened. */
async function serverSide(
  ctx: CommandContext,
  m: ManifestObject,
  opts: { fieldManager: string; forceConflicts?: boolean; dryRun: boolean },
): Promise<string> {
  await ctx.client().serverSideApply(m.kind, m.object, {
    namespace: m.namespace || undefined,
    fieldManager: opts.fieldManager,
    force: opts.forceConflicts,
    dryRun: opts.dryRun,
    signal: ctx.signal,
  });
  return 'serverside-applied';
}

interface ApplyOptions {
  serverSide?: boolean;
  forceConflicts?: boolean;
  fieldManager: string;
  filename?: string[];
  recursive?: boolean;
  dryRun?: string | boolean;
  wait?: boolean;
  timeout: string;
}
