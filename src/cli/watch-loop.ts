// List, then watch from the list's resourceVersion, for as long as the caller wants: the loop
// behind `get -w`, `wait` and `delete --wait`. A watch the server ends is resumed from the last
// resourceVersion seen; a 410 (that version is too old) lists again.

import { setTimeout as delay } from 'node:timers/promises';
import type { ObjectList, WatchEvent, XenosClient } from '../client/client.ts';
import { ApiStatusError } from '../client/errors.ts';
import type { ResourceType } from '../model/api-resource.ts';
import type { XObject } from '../model/object.ts';

const RESUME_DELAY_MS = 250;

export interface WatchLoopOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  signal: AbortSignal;
}

export interface WatchLoopHandlers {
  /** A (re-)list. `relist` is true after a 410. Return true to stop. */
  onList: (items: XObject[], relist: boolean) => boolean | undefined;
  /** Return true to stop. BOOKMARK events are not passed on. */
  onEvent: (ev: WatchEvent) => boolean | undefined;
}

/** Resolves when a handler returns true or `signal` aborts. */
export async function listThenWatch(
  client: XenosClient,
  rt: ResourceType,
  opts: WatchLoopOptions,
  handlers: WatchLoopHandlers,
): Promise<void> {
  const { signal } = opts;
  let relist = false;
  while (!signal.aborted) {
    let list: ObjectList;
    try {
      list = await client.list(rt, { ...opts, signal });
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    if (handlers.onList(list.items, relist)) return;
    let rv = list.metadata.resourceVersion;
    try {
      for (;;) {
        const started = Date.now();
        for await (const ev of client.watch(rt, { ...opts, resourceVersion: rv, signal })) {
          const next = ev.object?.metadata?.resourceVersion;
          if (next) rv = next;
          if (ev.type === 'BOOKMARK') continue;
          if (handlers.onEvent(ev)) return;
        }
        if (signal.aborted) return;
        // The server ended the watch (its timeout): resume where it stopped, but never spin on a
        // server that ends every watch at once.
        if (Date.now() - started < RESUME_DELAY_MS)
          await delay(RESUME_DELAY_MS, undefined, { signal }).catch(() => {});
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiStatusError && err.code === 410) {
        relist = true;
        continue;
      }
      throw err;
    }
  }
}
