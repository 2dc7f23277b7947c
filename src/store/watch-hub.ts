// The store's watch machinery, independent of how objects are persisted: an in-memory ring of
// the last `historySize` change events since the process started, and the watchers fed from it.
//
// Delivery is synchronous and ordered: a committed write publishes its event before the write
// returns, and every watcher sees events in revision order exactly once, even when a listener
// writes to the store itself (its event is queued and delivered after the current one reaches
// everyone) or starts a new watch from inside a callback. A listener that throws is logged and
// removed; the writer never sees the error.
//
// Label selectors follow the Kubernetes watch cache: an object that starts matching arrives as
// ADDED, one that stops matching as DELETED.

import type { Log } from '../log/logger.ts';
import type { XObject } from '../model/object.ts';
import { ExpiredError } from './errors.ts';
import { deepFreeze } from './json-value.ts';
import type { FieldSelector, LabelSelector } from './selectors.ts';
import { matchesFields, matchesLabels } from './selectors.ts';
import type { WatchEvent, WatchEventType } from './store.ts';

export const DEFAULT_HISTORY_SIZE = 10_000;

/** What a slot of the ring holds once its event has left the history (never read: below `first`). */
const DROPPED: ChangeEvent = Object.freeze({
  revision: 0,
  type: 'DELETED',
  kind: '',
  object: Object.freeze({ apiVersion: '', kind: '', metadata: Object.freeze({ name: '' }) }) as XObject,
});

/** What the watch history keeps of an object before a change. */
export interface PreviousLabels {
  labels?: Readonly<Record<string, string>>;
}

/** The part of `obj` a change event keeps as its `previous`. */
export function previousOf(obj: XObject | undefined): PreviousLabels | undefined {
  return obj && { labels: obj.metadata.labels };
}

export interface ChangeEvent {
  revision: number;
  type: WatchEventType;
  kind: string;
  /** The object after the change (for DELETED: its last state). Frozen. */
  object: XObject;
  /** For MODIFIED and DELETED: the labels the object had before the change, all a watcher's selector
   *  needs of it (an object that stops matching is DELETED for that watcher). Only the labels are kept:
   *  the history holds thousands of events, and whole previous objects doubled its memory. */
  previous?: PreviousLabels;
}

export interface WatchFilter {
  kind: string;
  /** Only this namespace; undefined for all. */
  namespace?: string;
  labels: LabelSelector;
  fields: FieldSelector;
  /** Replay every kept event after this revision; undefined: live only. */
  fromRevision?: number;
}

export interface WatchHubInit {
  historySize?: number;
  /** The store's revision when the hub starts: watching from it or later needs no history. */
  startRevision: number;
  log: Log;
}

interface Watcher {
  filter: WatchFilter;
  /** A method signature on purpose: a watcher of one kind takes that kind's typed events
   *  (`WatchEvent<Host>`), and the hub only ever offers it events of the kind its filter names. */
  onEvent(ev: WatchEvent): void;
  /** The highest revision this watcher has been offered; later events only. */
  seen: number;
  active: boolean;
}

export class WatchHub {
  private readonly historySize: number;
  private readonly log: Log;
  /** Kept events in revision order: ring[first..]. */
  private ring: ChangeEvent[] = [];
  private first = 0;
  /** Every event with a revision above this one is in the ring. */
  private historyStart: number;
  private latest: number;
  private watchers: Watcher[] = [];
  private pending: ChangeEvent[] = [];
  private dispatching = false;

  constructor(init: WatchHubInit) {
    this.historySize = Math.max(1, init.historySize ?? DEFAULT_HISTORY_SIZE);
    this.historyStart = init.startRevision;
    this.latest = init.startRevision;
    this.log = init.log;
  }

  /** Records a committed change and delivers it to the watchers. Never throws. */
  publish(ev: ChangeEvent): void {
    deepFreeze(ev.object);
    if (ev.previous) deepFreeze(ev.previous);
    this.ring.push(ev);
    this.latest = ev.revision;
    if (this.ring.length - this.first > this.historySize) {
      this.historyStart = this.ring[this.first].revision;
      // Let the dropped event go now, not when the array is next compacted (it held up to twice the history).
      this.ring[this.first] = DROPPED;
      this.first++;
      if (this.first >= this.historySize) {
        this.ring = this.ring.slice(this.first);
        this.first = 0;
      }
    }
    this.pending.push(ev);
    this.drain();
  }

  /** Starts a watcher: replays kept events after `fromRevision` (synchronously, before this
   *  returns), then delivers live ones. ExpiredError if those events are no longer kept. */
  watch<T extends XObject>(filter: WatchFilter, onEvent: (ev: WatchEvent<T>) => void): () => void {
    const from = filter.fromRevision;
    if (from !== undefined && from < this.historyStart) {
      throw new ExpiredError(String(from), String(this.historyStart + 1));
    }
    const w: Watcher = { filter, onEvent, seen: from ?? this.latest, active: true };
    // Replay before registering, looking the next event up by revision each time: a listener that
    // writes during the replay appends to the ring, and this loop delivers that too, in order.
    for (let ev = this.after(w.seen); ev && w.active; ev = this.after(w.seen)) this.offer(w, ev);
    if (!w.active) return () => {};
    this.watchers.push(w);
    return () => this.remove(w);
  }

  /** Drops the kept events of these objects of `kind` (keys `namespace/name`): they expired, and a
   *  replay must not bring back what they held. The DELETED events published next are kept, so a watch
   *  resuming from before still learns they are gone. */
  forget(kind: string, objects: ReadonlySet<string>): void {
    if (objects.size === 0) return;
    const about = (ev: ChangeEvent) =>
      ev.kind === kind && objects.has(`${ev.object.metadata.namespace ?? ''}/${ev.object.metadata.name}`);
    this.ring = this.ring.slice(this.first).filter((ev) => !about(ev));
    this.first = 0;
  }

  /** Stops every watcher (the store is closing). */
  clear(): void {
    for (const w of this.watchers) w.active = false;
    this.watchers = [];
    this.pending = [];
  }

  /** Every event with a revision above this one is kept (at start: the store's revision then). */
  get oldest(): number {
    return this.historyStart;
  }

  get watcherCount(): number {
    return this.watchers.length;
  }

  /** The first kept event with a revision above `rev`. */
  private after(rev: number): ChangeEvent | undefined {
    let lo = this.first;
    let hi = this.ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ring[mid].revision <= rev) lo = mid + 1;
      else hi = mid;
    }
    return this.ring[lo];
  }

  private drain(): void {
    if (this.dispatching) return; // a listener wrote: the outer loop delivers this event next
    this.dispatching = true;
    try {
      for (let ev = this.pending.shift(); ev; ev = this.pending.shift()) {
        for (const w of [...this.watchers]) this.offer(w, ev);
      }
    } finally {
      this.dispatching = false;
    }
  }

  private offer(w: Watcher, ev: ChangeEvent): void {
    if (!w.active || ev.revision <= w.seen) return;
    w.seen = ev.revision;
    const out = translate(w.filter, ev);
    if (!out) return;
    try {
      w.onEvent(out);
    } catch (err) {
      this.log.error(
        { err, kind: w.filter.kind },
        `store watch on ${w.filter.kind}: the listener threw on ${out.type} ${describe(out.object)} and has been removed`,
      );
      this.remove(w);
    }
  }

  private remove(w: Watcher): void {
    w.active = false;
    this.watchers = this.watchers.filter((x) => x !== w);
  }
}

/** What a watcher with `filter` sees of `ev`, if anything. */
function translate(f: WatchFilter, ev: ChangeEvent): WatchEvent | undefined {
  if (ev.kind !== f.kind) return undefined;
  const obj = ev.object;
  if (f.namespace !== undefined && (obj.metadata.namespace ?? '') !== f.namespace) return undefined;
  if (!matchesFields(f.fields, obj)) return undefined;
  const now = matchesLabels(f.labels, obj.metadata.labels);
  const before = ev.previous ? matchesLabels(f.labels, ev.previous.labels) : now;
  switch (ev.type) {
    case 'ADDED':
      return now ? { type: 'ADDED', object: obj } : undefined;
    case 'DELETED':
      return now || before ? { type: 'DELETED', object: obj } : undefined;
    case 'MODIFIED':
      if (now && before) return { type: 'MODIFIED', object: obj };
      if (now) return { type: 'ADDED', object: obj };
      if (before) return { type: 'DELETED', object: obj };
      return undefined;
  }
}

function describe(obj: XObject): string {
  const ns = obj.metadata.namespace;
  return ns ? `${ns}/${obj.metadata.name}` : obj.metadata.name;
}
