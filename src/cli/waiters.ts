// Waiting for one object to reach a condition or to be gone, by watching it (never polling):
// behind `wait` and `delete --wait`. A condition whose observedGeneration is older than the
// object's generation describes an older spec and does not count.

import type { XenosClient } from '../client/client.ts';
import { TimeoutError } from '../client/errors.ts';
import type { Condition, XObject } from '../model/object.ts';
import type { WaitFor } from './args.ts';
import type { ResolvedKind } from './resources.ts';
import { listThenWatch } from './watch-loop.ts';

export interface WaitTarget {
  kind: ResolvedKind;
  name: string;
  namespace?: string;
}

/** Why the object does not (yet) satisfy `cond`, or undefined when it does. */
export function conditionUnmet(obj: XObject, cond: { type: string; status: string }): string | undefined {
  const conditions = (obj.status?.conditions ?? []) as Condition[];
  const c = conditions.find((x) => x.type.toLowerCase() === cond.type.toLowerCase());
  if (!c) return `it has no ${cond.type} condition yet`;
  const generation = obj.metadata.generation;
  if (c.observedGeneration !== undefined && generation !== undefined && c.observedGeneration < generation) {
    return `its ${c.type} condition describes generation ${c.observedGeneration}, not the current ${generation}`;
  }
  if (c.status !== cond.status) {
    return `${c.type} is ${c.status}${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ''})` : ''}`;
  }
  return undefined;
}

/**
 * Resolves when the object meets `what`; throws TimeoutError saying what was last seen.
 * For `condition`, the object must exist (a missing object is waited for as well).
 */
export async function waitFor(
  client: XenosClient,
  target: WaitTarget,
  what: WaitFor,
  opts: {
    timeoutMs: number;
    signal?: AbortSignal;
    timeoutText?: string;
    /** Told every state of the object seen while waiting (undefined: absent), e.g. to show progress. */
    onObject?: (obj: XObject | undefined) => void;
  },
): Promise<void> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  let lastSeen = 'it was not seen yet';
  let met = false;
  const check = (obj: XObject | undefined): boolean => {
    opts.onObject?.(obj);
    if (what.kind === 'delete') {
      met = obj === undefined;
      if (obj)
        lastSeen = obj.metadata.deletionTimestamp
          ? 'it is being deleted (finalizers pending)'
          : 'it still exists';
      return met;
    }
    if (!obj) {
      lastSeen = 'it does not exist';
      return false;
    }
    const why = conditionUnmet(obj, what);
    if (why) lastSeen = why;
    met = why === undefined;
    return met;
  };
  await listThenWatch(
    client,
    target.kind,
    { namespace: target.namespace, fieldSelector: `metadata.name=${target.name}`, signal },
    {
      onList: (items) => check(items.find((o) => o.metadata.name === target.name)),
      onEvent: (ev) => {
        if (ev.object.metadata.name !== target.name) return false;
        return check(ev.type === 'DELETED' ? undefined : ev.object);
      },
    },
  );
  if (met) return;
  if (opts.signal?.aborted) throw opts.signal.reason;
  const wanted = what.kind === 'delete' ? 'deletion' : `condition ${what.type}=${what.status}`;
  throw new TimeoutError(
    `timed out after ${opts.timeoutText ?? `${opts.timeoutMs / 1000}s`} waiting for ${wanted} on ${target.kind.plural}/${target.name}: ${lastSeen}`,
  );
}
