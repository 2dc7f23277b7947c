// The controller runner: watches the store for one kind (and for related kinds through mapping
// functions), feeds the keys of changed objects into a WorkQueue, and runs N workers that call the
// kind's `reconcile(key, { signal })` (for object controllers, a Reconciler's: reconciler.ts). A success
// forgets the key's backoff and honours `requeueAfterMs`; a TerminalError stops retrying and marks the
// object `Stalled`; any other failure is retried with per-key exponential backoff. A failure the
// reconcile already recorded in status comes back as `{ error }` and is not recorded again. Every object is re-queued on a periodic resync, so a
// missed event is repaired. `stop()` aborts in-flight reconciles and waits for the workers.

import { type Log, silentLogger } from '../log/logger.ts';
import type { ReconcileMetrics, ReconcileOutcome } from '../metrics/host-metrics.ts';
import type { KnownKind, ObjectOf } from '../model/kinds.ts';
import type { XObject } from '../model/object.ts';
import type { Store, WatchEvent } from '../store/store.ts';
import { markStalled } from './conditions.ts';
import { isTerminalError, type TerminalError } from './errors.ts';
import { keyOf, objectKey } from './keys.ts';
import type { RateLimiter } from './rate-limiter.ts';
import { updateStatus } from './status.ts';
import { WorkQueue } from './work-queue.ts';

export interface ReconcileResult {
  /** Reconcile this key again after this long, even if nothing changes. */
  requeueAfterMs?: number;
  /** The pass failed and already recorded why in the object's status (the Reconciler skeleton does):
   *  retried with backoff unless it is a TerminalError, and never recorded a second time. */
  error?: unknown;
}

export type ReconcileFn = (
  key: string,
  opts: { signal: AbortSignal },
) => Promise<ReconcileResult | undefined> | ReconcileResult | undefined;

/** A kind whose changes concern objects of the controller's kind. */
export interface WatchOf<K extends string> {
  kind: K;
  /** Keys (of the controller's kind) to enqueue when `obj` changes. */
  map(obj: ObjectOf<K>): string[];
}

/** A watch of any known kind; `map` gets that kind's typed object (`{ kind: HOST.kind, map: (h) => ... }`
 *  gives `h: Host`). */
export type RelatedWatch = { [K in KnownKind]: WatchOf<K> }[KnownKind];

export interface ControllerComponents {
  store: Store;
  log?: Log;
  /** Where each reconcile's result and latency, and the queue's depth, are reported (the host's /metrics). */
  metrics?: ReconcileMetrics;
}

export interface ControllerInit<K extends string = string> {
  /** For logs; defaults to the kind. */
  name?: string;
  kind: K;
  reconcile: ReconcileFn;
  /** Ignore changes of the kind's objects that touch only `status` (like controller-runtime's
   *  GenerationChangedPredicate, plus metadata): a controller whose own status writes would otherwise
   *  wake it at once, bypassing its backoff. Its periodic resync still sees everything. */
  ignoreStatusOnlyChanges?: boolean;
  /** Only enqueue objects of the kind that pass (e.g. those placed on this host). */
  filter?: (obj: ObjectOf<K>) => boolean;
  watches?: RelatedWatch[];
  /** Concurrent reconciles; different keys only. Default 2. */
  workers?: number;
  /** Re-queue every object this often. Default 5 min. */
  resyncMs?: number;
  /** Abort a reconcile that runs longer than this. Default 2 min. */
  reconcileTimeoutMs?: number;
  rateLimiter?: RateLimiter;
  /** Record a terminal error; default: a `Stalled` condition (and Ready=False) in the object's status. */
  onTerminal?: (key: string, err: TerminalError) => Promise<void> | void;
}

const DEFAULT_WORKERS = 2;
const DEFAULT_RESYNC_MS = 5 * 60_000;
const DEFAULT_RECONCILE_TIMEOUT_MS = 120_000;

export class Controller<K extends string = string> {
  readonly kind: K;
  private readonly store: Store;
  private readonly log: Log;
  private readonly metrics: ReconcileMetrics | undefined;
  private readonly init: ControllerInit<K>;
  private queue: WorkQueue | undefined;
  private abort: AbortController | undefined;
  private unwatch: (() => void)[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private workers: Promise<void>[] = [];
  /** For ignoreStatusOnlyChanges: what of each object last woke the controller. */
  private readonly seen = new Map<string, string>();

  constructor(components: ControllerComponents, init: ControllerInit<K>) {
    this.store = components.store;
    this.kind = init.kind;
    this.log = components.log ?? silentLogger.root;
    this.metrics = components.metrics;
    this.init = init;
  }

  private get name(): string {
    return this.init.name ?? this.kind;
  }

  get isStarted(): boolean {
    return this.queue !== undefined;
  }

  start(): void {
    if (this.queue) return;
    const queue = new WorkQueue({ rateLimiter: this.init.rateLimiter });
    this.queue = queue;
    this.abort = new AbortController();
    const unwatchQueue = this.metrics?.watchQueue(this.name, () => queue.length);
    if (unwatchQueue) this.unwatch.push(unwatchQueue);

    // List, then watch from the list's revision, so no change between the two is missed.
    const listed = this.store.list(this.kind);
    this.unwatch.push(
      this.store.watch(this.kind, { resourceVersion: listed.resourceVersion }, (ev) => this.onEvent(ev)),
    );
    for (const obj of listed.items) {
      this.remember(obj);
      this.enqueueObject(obj);
    }
    for (const w of this.init.watches ?? []) this.unwatch.push(this.watchRelated(w));
    const resyncMs = this.init.resyncMs ?? DEFAULT_RESYNC_MS;
    this.resyncTimer = setInterval(() => this.resync(), resyncMs);
    this.resyncTimer.unref?.();

    const n = this.init.workers ?? DEFAULT_WORKERS;
    for (let i = 0; i < n; i++) {
      this.workers.push(this.work(queue).catch((err) => this.log.error({ err: err }, 'worker crashed')));
    }
  }

  /** Stop watching, abort in-flight reconciles and wait for the workers to return. */
  async stop(): Promise<void> {
    const queue = this.queue;
    if (!queue) return;
    for (const u of this.unwatch.splice(0)) u();
    clearInterval(this.resyncTimer);
    queue.shutDown();
    this.abort?.abort(new Error(`controller ${this.name} stopped`));
    await Promise.all(this.workers.splice(0));
    this.queue = undefined;
  }

  /** Queue a key of the controller's kind (`namespace/name`, or `name` when cluster-scoped). */
  enqueue(key: string): void {
    this.queue?.add(key);
  }

  enqueueAfter(key: string, delayMs: number): void {
    this.queue?.addAfter(key, delayMs);
  }

  /** Failures of `key` since its last success (its backoff exponent). */
  retries(key: string): number {
    return this.queue?.retries(key) ?? 0;
  }

  /** Queue every object of the kind (what the periodic resync does). */
  resync(): void {
    try {
      for (const obj of this.store.list(this.kind).items) this.enqueueObject(obj);
    } catch (err) {
      this.log.error({ err: err }, 'resync: listing failed');
    }
  }

  private watchRelated<R extends string>(w: WatchOf<R>): () => void {
    return this.store.watch(w.kind, {}, (ev) => {
      for (const key of this.mapSafely(w, ev.object)) this.enqueue(key);
    });
  }

  private onEvent(ev: WatchEvent<ObjectOf<K>>): void {
    const key = keyOf(ev.object);
    // A deleted object is still reconciled (to clean up what belonged to it).
    if (ev.type === 'DELETED') {
      this.seen.delete(key);
      this.enqueue(key);
      return;
    }
    if (this.init.ignoreStatusOnlyChanges && !this.remember(ev.object)) return;
    this.enqueueObject(ev.object);
  }

  /** Record what of `obj` wakes the controller; false when that did not change since last time. */
  private remember(obj: XObject): boolean {
    const m = obj.metadata;
    const fingerprint = JSON.stringify([
      m.generation,
      m.labels,
      m.annotations,
      m.finalizers,
      m.deletionTimestamp,
    ]);
    const key = keyOf(obj);
    if (this.seen.get(key) === fingerprint) return false;
    this.seen.set(key, fingerprint);
    return true;
  }

  private enqueueObject(obj: ObjectOf<K>): void {
    if (this.init.filter && !this.init.filter(obj)) return;
    this.enqueue(keyOf(obj));
  }

  private mapSafely<R extends string>(w: WatchOf<R>, obj: ObjectOf<R>): string[] {
    try {
      return w.map(obj);
    } catch (err) {
      this.log.error({ err: err }, `mapping a ${w.kind} change to ${this.kind} keys failed`);
      return [];
    }
  }

  private async work(queue: WorkQueue): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        await this.processOne(queue, key);
      } finally {
        queue.done(key);
      }
    }
  }

  private async processOne(queue: WorkQueue, key: string): Promise<void> {
    const began = performance.now();
    const outcome = await this.reconcileOne(queue, key);
    if (outcome) this.metrics?.reconciled(this.name, outcome, (performance.now() - began) / 1000);
  }

  /** One reconcile of `key` and what became of the key; undefined when the controller is stopping. */
  private async reconcileOne(queue: WorkQueue, key: string): Promise<ReconcileOutcome | undefined> {
    const stopSignal = this.abort!.signal;
    const timeoutMs = this.init.reconcileTimeoutMs ?? DEFAULT_RECONCILE_TIMEOUT_MS;
    const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(timeoutMs)]);
    try {
      const result = await this.init.reconcile(key, { signal });
      if (result?.error !== undefined) return this.recordedFailure(queue, key, result.error);
      queue.forget(key);
      if (result?.requeueAfterMs === undefined) return 'success';
      queue.addAfter(key, result.requeueAfterMs);
      return 'requeue';
    } catch (err) {
      if (stopSignal.aborted) return undefined;
      if (isTerminalError(err)) {
        queue.forget(key);
        this.log.warn(`${this.kind} ${key}: stalled: ${err.reason}: ${err.message}`);
        try {
          await (this.init.onTerminal ?? ((k, e) => this.markStalled(k, e)))(key, err);
        } catch (markErr) {
          this.log.error({ err: markErr }, `${this.kind} ${key}: recording the terminal error failed`);
          queue.addRateLimited(key);
        }
        return 'terminal';
      }
      this.retryLater(queue, key, err);
      return 'error';
    }
  }

  private retryLater(queue: WorkQueue, key: string, err: unknown): void {
    const delay = queue.addRateLimited(key);
    this.log.warn(
      `${this.kind} ${key}: reconcile failed (retry ${queue.retries(key)} in ${delay} ms): ${errorMessage(err)}`,
    );
  }

  /** A failure the reconcile recorded in status itself: not retried when terminal, else backoff. */
  private recordedFailure(queue: WorkQueue, key: string, err: unknown): ReconcileOutcome {
    if (isTerminalError(err)) {
      queue.forget(key);
      return 'terminal';
    }
    this.retryLater(queue, key, err);
    return 'error';
  }

  private async markStalled(key: string, err: TerminalError): Promise<void> {
    await updateStatus(this.store, objectKey(this.kind, key), (status, obj) => {
      markStalled(status, err.reason, err.message, obj.metadata.generation);
    });
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
