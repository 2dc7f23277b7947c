// `xenosctl apply -f FILE|DIR|- [-R] [--dry-run=none|client|server] [--wait [--timeout 5m]]`: create
// what is missing and merge-patch what differs, kubectl's client-side apply. Every document is checked
// first; if any is invalid, every problem is printed and nothing is applied. --wait then waits for the
// templates and instances to be Ready, with a progress bar while an image is pulled (apply/wait-ready.ts).

import type { Command } from 'commander';
import type { XenosClient } from '../../client/client.ts';
import { isNotFound } from '../../client/errors.ts';
import type { XObject } from '../../model/object.ts';
import { LAST_APPLIED, threeWayPatch, withLastApplied } from '../apply/three-way-patch.ts';
import { waitApplied } from '../apply/wait-ready.ts';
import { type DryRun, parseDryRun, parseDuration } from '../args.ts';
import type { CommandContext } from '../context.ts';
import { CliError } from '../errors.ts';
import { loadManifests, type ManifestObject } from '../manifests.ts';
import { qualifiedSingular } from '../resources.ts';
import { uploadLocalImages } from '../template-images.ts';

export type ApplyResult = 'created' | 'configured' | 'unchanged';

export const FIELD_MANAGER = 'xenosctl-client-side-apply';

/** Applies one checked object. Exported for the benchmark and for other tools. */
export async function applyObject(
  client: XenosClient,
  m: ManifestObject,
  opts: { dryRun?: boolean; signal?: AbortSignal } = {},
): Promise<{ result: ApplyResult; object: unknown }> {
  const modified = withLastApplied(m.object);
  const ns = m.namespace || undefined;
  const common = { namespace: ns, signal: opts.signal, dryRun: opts.dryRun, fieldManager: FIELD_MANAGER };
  let live: XObject;
  try {
    live = await client.get(m.kind, m.name, { namespace: ns, signal: opts.signal });
  } catch (err) {
    if (!isNotFound(err)) throw err;
    return { result: 'created', object: await client.create(m.kind, modified, common) };
  }
  const patch = threeWayPatch(live, modified);
  if (!patch) return { result: 'unchanged', object: live };
  return { result: 'configured', object: await client.patch(m.kind, m.name, patch, common) };
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
    .option('--wait', 'then wait until the templates and instances applied are Ready (a bar while pulling)')
    .option('--timeout <duration>', 'with --wait: give up after this long (e.g. 90s, 10m)', '5m')
    .addHelpText(
      'after',
      `
The configuration applied is kept in the annotation ${LAST_APPLIED}, so a field removed from the
file is removed from the object on the next apply. Fields set by others (status, defaults) stay.

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
  xenosctl apply -f web.yaml --wait --timeout 10m`,
    )
    .action(async (opts: ApplyOptions) => {
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
          const { result } = await applyObject(ctx.client(), m, {
            dryRun: dryRun === 'server',
            signal: ctx.signal,
          });
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

interface ApplyOptions {
  filename?: string[];
  recursive?: boolean;
  dryRun?: string | boolean;
  wait?: boolean;
  timeout: string;
}
