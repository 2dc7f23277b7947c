// Client-side apply of one object, as kubectl does it: create it when it is missing, else send the
// three-way merge patch (three-way-patch.ts) when the live object differs from the configuration, and
// nothing at all when it does not. Shared by `xenosctl apply` and the GitOps watcher of xenosd.

import type { ResourceType } from '../model/api-resource.ts';
import type { XObject } from '../model/object.ts';
import type { XenosClient } from './client.ts';
import { isAlreadyExists, isNotFound } from './errors.ts';
import { threeWayPatch, withLastApplied } from './three-way-patch.ts';

export type ApplyResult = 'created' | 'configured' | 'unchanged';

export interface ApplyOptions {
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Who writes (kubectl's --field-manager). */
  fieldManager: string;
  /** Called with the live object before it is changed; throws to leave it alone. */
  guard?: (live: XObject) => void;
  /** The live object as the caller just listed it (null: it does not exist), instead of a GET. */
  live?: XObject | null;
}

/** Applies `object` (of kind `rt`, already checked); says what it did and what the server holds now. */
export async function applyObject(
  client: XenosClient,
  rt: ResourceType,
  object: XObject,
  opts: ApplyOptions,
): Promise<{ result: ApplyResult; object: XObject }> {
  const modified = withLastApplied(object);
  const namespace = (rt.namespaced && object.metadata.namespace) || undefined;
  const { signal, dryRun, fieldManager } = opts;
  for (let attempt = 0; ; attempt++) {
    let live: XObject;
    try {
      const listed = attempt === 0 ? opts.live : undefined;
      if (listed === null) throw new ListedAbsent();
      live = listed ?? (await client.get(rt, object.metadata.name, { namespace, signal }));
    } catch (err) {
      if (!isNotFound(err) && !(err instanceof ListedAbsent)) throw err;
      try {
        const created = await client.create(rt, modified, { namespace, signal, dryRun, fieldManager });
        return { result: 'created', object: created };
      } catch (createErr) {
        // Someone else created it between the two calls (another host applying the same files): once
        // more, as an update of what they wrote.
        if (attempt === 0 && isAlreadyExists(createErr)) continue;
        throw createErr;
      }
    }
    opts.guard?.(live);
    const patch = threeWayPatch(live, modified);
    if (!patch) return { result: 'unchanged', object: live };
    const patched = await client.patch(rt, object.metadata.name, patch, {
      namespace,
      signal,
      dryRun,
      fieldManager,
    });
    return { result: 'configured', object: patched };
  }
}

/** The caller's list says the object does not exist. */
class ListedAbsent extends Error {}
