// Watch streams: `?watch=true` answers 200 at once (headers flushed, or `kubectl wait` blocks)
// and then writes one JSON event per line until timeoutSeconds, the client going away, or the
// server stopping. Without a resourceVersion (or "0") the current objects come first as ADDED,
// as in Kubernetes. Tables are sent per event when the client asked for them.

import type { ServerResponse } from 'node:http';
import type { XObject } from '../model/object.ts';
import { matchesFields } from '../store/selectors.ts';
import type { Store, WatchEvent } from '../store/store.ts';
import { booleanParam, integerParam } from './http-io.ts';
import { MAX_WATCHES_PER_PRINCIPAL } from './input-limits.ts';
import type { ResourceHandlers, ResourceRequest } from './resource-handlers.ts';
import { errors } from './status-errors.ts';
import { parseIncludeObject, toTable, wantsTable } from './table.ts';

/** Default and maximum length of a watch, like the Kubernetes API's min-request-timeout. */
const MAX_WATCH_SECONDS = 1800;
const BOOKMARK_INTERVAL_MS = 30_000;
/** A client this far behind is cut off; it lists again and re-watches. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

export interface WatchComponents {
  store: Store;
  handlers: ResourceHandlers;
}

export interface WatchInit {
  /** Open watches one principal may hold (default MAX_WATCHES_PER_PRINCIPAL). */
  maxPerPrincipal?: number;
}

/** Every open watch, so that stop() can end them. */
export class Watches {
  readonly #store: Store;
  readonly #handlers: ResourceHandlers;
  readonly #open = new Set<() => void>();
  readonly #perPrincipal = new Map<string, number>();
  readonly #maxPerPrincipal: number;

  constructor(components: WatchComponents, init: WatchInit = {}) {
    this.#store = components.store;
    this.#handlers = components.handlers;
    this.#maxPerPrincipal = init.maxPerPrincipal ?? MAX_WATCHES_PER_PRINCIPAL;
  }

  get size(): number {
    return this.#open.size;
  }

  /** End every open watch (server shutdown). */
  closeAll(): void {
    for (const end of [...this.#open]) end();
  }

  serve(r: ResourceRequest): void {
    const who = r.principal.name;
    const held = this.#perPrincipal.get(who) ?? 0;
    if (held >= this.#maxPerPrincipal) {
      throw errors.tooManyRequests(
        `User "${who}" has ${held} watches open, the most one user may hold; close some (or end them with timeoutSeconds) and watch again`,
        1,
      );
    }
    const { opts, filter } = this.#handlers.selection(r);
    const table = wantsTable(r.req.headers.accept);
    const include = parseIncludeObject(r.query.get('includeObject'));
    const timeoutSeconds = Math.min(
      integerParam(r.query, 'timeoutSeconds') ?? MAX_WATCH_SECONDS,
      MAX_WATCH_SECONDS,
    );
    const bookmarks = booleanParam(r.query, 'allowWatchBookmarks') && !table;
    let rv = r.query.get('resourceVersion') ?? '';
    const initial: XObject[] = [];
    if (rv === '' || rv === '0') {
      const listed = this.#store.list(r.resource.kind, { ...opts });
      initial.push(...listed.items.filter((o) => matchesFields(filter, o)));
      rv = listed.resourceVersion;
    }

    const res: ServerResponse = r.res;
    let lastRv = rv;
    const write = (ev: WatchEvent | { type: 'BOOKMARK'; object: unknown }) => {
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        end();
        return;
      }
      res.write(JSON.stringify(ev) + '\n');
    };
    const send = (type: WatchEvent['type'], obj: XObject) => {
      if (!matchesFields(filter, obj)) return;
      lastRv = obj.metadata.resourceVersion ?? lastRv;
      const typed = { ...obj, apiVersion: r.resource.apiVersion, kind: r.resource.kind };
      const object = table
        ? toTable(r.resource, [typed], include, { resourceVersion: obj.metadata.resourceVersion })
        : typed;
      write({ type, object } as WatchEvent);
    };

    // Subscribing first: an ExpiredError (410) is still answered as a plain Status response.
    const pending: WatchEvent[] = [];
    let started = false;
    const unsubscribe = this.#store.watch(r.resource.kind, { ...opts, resourceVersion: rv }, (ev) => {
      if (!started) pending.push(ev);
      else send(ev.type, ev.object);
    });

    let ended = false;
    const timers: NodeJS.Timeout[] = [];
    this.#perPrincipal.set(who, held + 1);
    const end = () => {
      if (ended) return;
      ended = true;
      const left = (this.#perPrincipal.get(who) ?? 1) - 1;
      if (left > 0) this.#perPrincipal.set(who, left);
      else this.#perPrincipal.delete(who);
      unsubscribe();
      for (const t of timers) clearTimeout(t);
      this.#open.delete(end);
      res.end();
    };
    this.#open.add(end);
    res.on('close', end);
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
      'Transfer-Encoding': 'chunked',
    });
    res.flushHeaders();
    started = true;
    for (const obj of initial) send('ADDED', obj);
    for (const ev of pending.splice(0)) send(ev.type, ev.object);
    timers.push(setTimeout(end, timeoutSeconds * 1000));
    if (bookmarks) {
      const tick = setInterval(() => {
        write({
          type: 'BOOKMARK',
          object: {
            apiVersion: r.resource.apiVersion,
            kind: r.resource.kind,
            metadata: { resourceVersion: lastRv },
          },
        });
      }, BOOKMARK_INTERVAL_MS);
      timers.push(tick);
    }
  }
}
