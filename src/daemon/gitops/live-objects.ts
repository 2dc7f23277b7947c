// What the cluster holds of one kind, as a GitOps source sees it: filled by one list, then kept current by
// a watch through the API (the client-go informer's pattern). A watch that ends (its timeout, a broken
// connection) is resumed from the last revision seen, never by listing again — only a 410 (the revision
// was compacted) lists again. Each change that is not only a status write is reported, so a source
// repairs drift as soon as it happens rather than at its next periodic sync.

import { setTimeout as delay } from 'node:timers/promises';
import type { XenosClient } from '../../client/client.ts';
import { ApiStatusError } from '../../client/errors.ts';
import type { Log } from '../../log/logger.ts';
import type { ResourceType } from '../../model/api-resource.ts';
import type { XObject } from '../../model/object.ts';

/** `namespace/name` (or `name`). */
export function liveKey(o: XObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

export class LiveObjects {
  readonly objects = new Map<string, XObject>();
  /** Lists this kind's objects: how many times (1 unless a watch was compacted away). */
  lists = 0;
  readonly #client: XenosClient;
  readonly #rt: ResourceType;
  readonly #log: Log;
  readonly #onChange: (o: XObject) => void;
  #ready: Promise<void> | undefined;
  #loop: Promise<void> | undefined;
  #rv = '';

  constructor(client: XenosClient, rt: ResourceType, log: Log, onChange: (o: XObject) => void) {
    this.#client = client;
    this.#rt = rt;
    this.#log = log;
    this.#onChange = onChange;
  }

  /** Resolves once the first list is in (the cache can be read then). */
  start(signal: AbortSignal): Promise<void> {
    if (!this.#ready) {
      const ready = this.#list(signal);
      this.#ready = ready;
      // A failed first list is tried again by the next start().
      this.#loop = ready.then(
        () => this.#watch(signal),
        () => {
          this.#ready = undefined;
        },
      );
    }
    return this.#ready;
  }

  /** Resolves once the watch loop has ended (after the signal aborted). */
  async stopped(): Promise<void> {
    await this.#loop;
  }

  async #list(signal: AbortSignal): Promise<void> {
    const list = await this.#client.list(this.#rt, { signal });
    this.lists++;
    this.objects.clear();
    for (const o of list.items) this.objects.set(liveKey(o), o);
    this.#rv = list.metadata.resourceVersion ?? '';
  }

  async #watch(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        for await (const ev of this.#client.watch(this.#rt, {
          resourceVersion: this.#rv,
          timeoutSeconds: 300,
          signal,
        })) {
          this.#rv = ev.object.metadata.resourceVersion ?? this.#rv;
          if (ev.type === 'BOOKMARK') continue;
          const key = liveKey(ev.object);
          const before = this.objects.get(key);
          if (ev.type === 'DELETED') this.objects.delete(key);
          else this.objects.set(key, ev.object);
          if (ev.type === 'DELETED' || !before || !onlyStatus(before, ev.object)) this.#onChange(ev.object);
        }
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiStatusError && err.code === 410) {
          await this.#list(signal).catch(() => {});
          continue;
        }
        this.#log.debug(`watching ${this.#rt.plural}: ${(err as Error).message}; resuming from ${this.#rv}`);
        await delay(1000, undefined, { signal }).catch(() => {});
      }
    }
  }
}

/** Whether `after` differs from `before` in status (or server bookkeeping) only. */
function onlyStatus(before: XObject, after: XObject): boolean {
  const a = before.metadata;
  const b = after.metadata;
  return (
    a.generation === b.generation &&
    JSON.stringify([a.labels, a.annotations, a.deletionTimestamp]) ===
      JSON.stringify([b.labels, b.annotations, b.deletionTimestamp])
  );
}
