// `xenosctl diff -f FILE|DIR|- [-R]`: a unified diff of each live object against what apply would
// make of it, computed by the server with dryRun=All. Exit code 0: no difference, 1: differences,
// greater than 1: an error (like kubectl diff, whose scripts test for exactly this).

import type { Command } from 'commander';
import type { XenosClient } from '../../client/client.ts';
import { isNotFound } from '../../client/errors.ts';
import { threeWayPatch, withLastApplied } from '../../client/three-way-patch.ts';
import type { CommandContext } from '../context.ts';
import { CliError } from '../errors.ts';
import { loadManifests, type ManifestObject } from '../manifests.ts';
import { unifiedDiff } from '../printers/unified-diff.ts';
import { toYaml } from '../printers/yaml.ts';
import { FIELD_MANAGER } from './apply.ts';

/** Drops what changes on every write and means nothing to a reader. */
function forDiff(obj: unknown): string {
  if (obj === undefined) return '';
  const copy = structuredClone(obj) as { metadata?: Record<string, unknown> };
  if (copy.metadata) delete copy.metadata.managedFields;
  return toYaml(copy);
}

/** The live object and what apply would make of it (undefined = absent). */
export async function liveAndMerged(
  client: XenosClient,
  m: ManifestObject,
  signal?: AbortSignal,
): Promise<{ live?: unknown; merged: unknown }> {
  const modified = withLastApplied(m.object);
  const namespace = m.namespace || undefined;
  const common = { namespace, signal, dryRun: true, fieldManager: FIELD_MANAGER };
  try {
    const live = await client.get(m.kind, m.name, { namespace, signal });
    const patch = threeWayPatch(live, modified);
    if (!patch) return { live, merged: live };
    // The resourceVersion makes the dry run fail rather than show a diff against a newer object.
    const guarded = {
      ...patch,
      metadata: { ...(patch.metadata as object), resourceVersion: live.metadata.resourceVersion },
    };
    return { live, merged: await client.patch(m.kind, m.name, guarded, common) };
  } catch (err) {
    if (!isNotFound(err)) throw err;
    return { live: undefined, merged: await client.create(m.kind, modified, common) };
  }
}

export function registerDiff(program: Command, ctx: CommandContext): void {
  program
    .command('diff')
    .description('Show what apply would change, as a unified diff of YAML')
    .option('-f, --filename <path...>', 'a file, a directory, or - for standard input (repeatable)')
    .option('-R, --recursive', 'descend into sub-directories of a -f directory')
    .addHelpText(
      'after',
      `
Exit status: 0 no differences, 1 differences found, >1 xenosctl or the server failed.

Examples:
  xenosctl diff -f manifests/web.yaml
  xenosctl diff -R -f manifests/ || echo "apply would change something"`,
    )
    .action(async (opts: { filename?: string[]; recursive?: boolean }) => {
      let differs: boolean;
      try {
        differs = await diffAll(ctx, opts);
      } catch (err) {
        // kubectl diff's contract: 1 means "differences", so failures exit 2 or more.
        if (err instanceof CliError) {
          throw new CliError(err.message, {
            exitCode: Math.max(2, err.exitCode),
            details: err.details,
            cause: err,
          });
        }
        throw new CliError(err instanceof Error ? err.message : String(err), { exitCode: 2, cause: err });
      }
      // Differences are not an error: no message, exit code 1.
      if (differs) throw new CliError('', { exitCode: 1 });
    });
}

/** Prints the diff of every object; true when any differs. */
async function diffAll(
  ctx: CommandContext,
  opts: { filename?: string[]; recursive?: boolean },
): Promise<boolean> {
  const objects = await loadManifests(ctx, opts.filename ?? [], {
    recursive: opts.recursive,
    resolver: ctx.resolver(),
  });
  let differs = false;
  for (const m of objects) {
    const { live, merged } = await liveAndMerged(ctx.client(), m, ctx.signal);
    const id = `${m.kind.group}.${m.kind.version}.${m.kind.kind}.${m.namespace ? `${m.namespace}.` : ''}${m.name}`;
    const text = unifiedDiff(forDiff(live), forDiff(merged), {
      a: live === undefined ? '/dev/null' : `live/${id}`,
      b: `merged/${id}`,
    });
    if (text) {
      differs = true;
      ctx.out(text);
    }
  }
  return differs;
}
