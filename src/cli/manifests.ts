// Loading `-f FILE|DIR|-` for apply, diff and delete: every document is parsed and checked before
// anything is sent, and every problem is reported at once as `file:line:col: field.path: message`
// (parsing and schema errors from src/api/manifest.ts; unknown kinds and namespace clashes here).

import type { XObject } from '../model/object.ts';
import type { CommandContext } from './context.ts';
import { CliError, UsageError } from './errors.ts';
import type { KindResolver, ResolvedKind } from './resources.ts';

export interface ManifestObject {
  file: string;
  line: number;
  object: XObject;
  kind: ResolvedKind;
  /** '' for cluster-scoped kinds. */
  namespace: string;
  name: string;
}

export interface LoadOptions {
  recursive?: boolean;
  resolver: KindResolver;
}

/** Loads and checks everything; throws CliError listing every problem (nothing is applied). */
export async function loadManifests(
  ctx: CommandContext,
  paths: string[],
  opts: LoadOptions,
): Promise<ManifestObject[]> {
  if (paths.length === 0) throw new UsageError('must specify -f FILE, a directory or - (standard input)');
  const stdin = paths.includes('-') ? await ctx.io.readStdin() : undefined;
  // Loaded on first use: the parser and schema validator are only needed by -f commands, and
  // xenosctl get should start fast.
  const { formatLocatedError, loadManifestFiles } = await import('../api/manifest.ts');
  // Paths stay as typed, so that errors name the files the way the user did.
  const loaded = await loadManifestFiles(paths, {
    recursive: opts.recursive ?? false,
    stdin,
    signal: ctx.signal,
  });
  const problems = loaded.errors.map((e) => formatLocatedError(e));
  const out: ManifestObject[] = [];
  const defaultNs = ctx.settings().namespace;
  for (const doc of loaded.docs) {
    const where = `${doc.file}:${doc.line}:1`;
    const obj = doc.object as XObject;
    let kind: ResolvedKind;
    try {
      kind = await opts.resolver.forObject(obj.apiVersion, obj.kind, { signal: ctx.signal });
    } catch (err) {
      if (err instanceof UsageError) {
        problems.push(`${where}: kind: ${err.message}`);
        continue;
      }
      throw err;
    }
    let namespace = '';
    if (kind.namespaced) {
      // The loader fills in `default` for a manifest without a namespace; -n replaces that.
      const written = doc.namespaceSet ? obj.metadata.namespace : undefined;
      if (written && ctx.namespaceExplicit() && written !== defaultNs) {
        problems.push(
          `${where}: metadata.namespace: "${written}" does not match --namespace "${defaultNs}"; drop one of them`,
        );
        continue;
      }
      namespace = written || defaultNs;
      obj.metadata = { ...obj.metadata, namespace };
    } else if (obj.metadata.namespace) {
      problems.push(`${where}: metadata.namespace: ${kind.kind} is cluster-scoped; remove the namespace`);
      continue;
    }
    out.push({ file: doc.file, line: doc.line, object: obj, kind, namespace, name: obj.metadata.name });
  }
  if (problems.length) {
    throw new CliError(
      `${problems.length} problem${problems.length === 1 ? '' : 's'} in the manifests; nothing was applied:`,
      { details: problems },
    );
  }
  if (out.length === 0) throw new CliError(`no objects found in ${paths.join(', ')}`);
  return out;
}
