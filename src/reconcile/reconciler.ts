// The one reconcile skeleton every object controller of Xenos runs its kind through, after Flux's: load
// the object; gone → let the kind release what this host holds for it; not this host's → let the kind
// say what to do instead; being deleted → finalize, then drop the finalizer; otherwise ensure the
// finalizer and run the kind's small named steps in order. Steps never write status: each queues what it
// learned (`scope.status(mutate)`), and the skeleton writes status ONCE at the end — re-read, every queued
// change applied in order, `Synced` set from the outcome, `Ready` summarised — and not at all when nothing
// changed. Every error a step throws lands in a condition with a reason: a TerminalError in `Stalled` (not
// retried), any other in `Synced=False` (retried with the runner's per-key backoff).

import { type Log, silentLogger } from '../log/logger.ts';
import type { ObjectOf } from '../model/kinds.ts';
import type { BaseStatus, Condition } from '../model/object.ts';
import type { Store } from '../store/store.ts';
import { getCondition, markStalled, removeCondition, STALLED, setCondition } from './conditions.ts';
import type { ReconcileResult } from './controller.ts';
import { isTerminalError } from './errors.ts';
import { objectKey } from './keys.ts';
import { type StatusOf, updateStatus } from './status.ts';

/** Whether the last reconcile of the object's current generation got through without an error. */
export const SYNCED = 'Synced';
export const SYNCED_REASON = 'ReconcileSuccess';

/** What a step may end the pass with: reconcile again after a while, and/or skip the remaining steps. */
export type StepOutcome = { requeueAfterMs?: number; stop?: boolean } | undefined;

/** One pass over one object, as the steps see it. */
export interface Scope<K extends string, P extends object = object> {
  readonly key: string;
  /** The object as last read or written in this pass (a step that writes metadata or spec replaces it). */
  object: ObjectOf<K>;
  readonly generation: number;
  readonly signal: AbortSignal;
  /** What the steps of this pass hand on to the later ones (the kind's `data()`). */
  readonly data: P;
  /** Queue a change of the status; applied, in order, to a fresh copy in the pass's one write. */
  status(mutate: (status: StatusOf<K>, object: ObjectOf<K>) => void): void;
  /** Write the queued status now and go on: only for a step that can run for minutes (an image import),
   *  as Flux's progressive status, so users see it working. */
  progress(): Promise<void>;
}

/** A named sub-step of a reconcile; the name is the reason prefix of the errors it throws. */
export interface Step<K extends string, P extends object = object> {
  name: string;
  run(scope: Scope<K, P>): StepOutcome | undefined | Promise<StepOutcome | undefined>;
}

/** Why a pass failed, as its conditions say it. */
export interface Failure {
  step: string;
  reason: string;
  message: string;
  terminal: boolean;
}

export interface ReconcilerComponents {
  store: Store;
  log?: Log;
}

export interface ReconcilerInit<K extends string, P extends object = object> {
  kind: K;
  /** A fresh hand-on object for each pass. */
  data?: () => P;
  /** Kept on every object this host reconciles until `finalize` has released what it holds. */
  finalizer?: string;
  /** The object is gone from the store: release what this host still holds for it. */
  gone?(key: string, signal: AbortSignal): Promise<ReconcileResult | undefined> | ReconcileResult | undefined;
  /** Whether this host reconciles the object (default: always). */
  owns?(object: ObjectOf<K>): boolean;
  /** The object is not this host's: what to do instead (release, place it, ...). No status is written. */
  elsewhere?(object: ObjectOf<K>, signal: AbortSignal): Promise<ReconcileResult | undefined>;
  /** Being deleted, finalizer still on: release; true once all is released (the finalizer then goes). */
  finalize?(scope: Scope<K, P>): Promise<boolean> | boolean;
  steps: Step<K, P>[];
  /** Facts every status write of the kind carries (the host, the driver, ...). */
  always?(status: StatusOf<K>, object: ObjectOf<K>, generation: number): void;
  /** How the kind shows a failure beside the conditions (a phase). */
  failed?(status: StatusOf<K>, failure: Failure, object: ObjectOf<K>): void;
  /** `Ready` (and any other summary) from the other conditions; the last change of every write. */
  summarise(status: StatusOf<K>, generation: number): void;
  /** Record an Event about the object (a terminal failure is one). */
  event?(object: ObjectOf<K>, type: 'Normal' | 'Warning', reason: string, message: string): void;
}

export class Reconciler<K extends string, P extends object = object> {
  private readonly store: Store;
  private readonly log: Log;
  private readonly init: ReconcilerInit<K, P>;

  constructor(components: ReconcilerComponents, init: ReconcilerInit<K, P>) {
    this.store = components.store;
    this.log = components.log ?? silentLogger.root;
    this.init = init;
  }

  /** One pass over `key`. A failure comes back as `error` (already recorded in status), never thrown. */
  async reconcile(key: string, { signal }: { signal: AbortSignal }): Promise<ReconcileResult | undefined> {
    const init = this.init;
    const object = this.store.get(objectKey(init.kind, key)) as ObjectOf<K> | undefined;
    if (!object) return init.gone?.(key, signal);
    if (init.owns && !init.owns(object)) return init.elsewhere?.(object, signal);
    const deleting = Boolean(object.metadata.deletionTimestamp);
    if (deleting && !this.holdsFinalizer(object)) return undefined;

    const pass = new Pass<K, P>(this.store, init, key, object, signal);
    let result: ReconcileResult | undefined;
    let failure: Failure | undefined;
    let completed = false;
    let step = deleting ? 'finalize' : 'finalizer';
    try {
      if (deleting) {
        if (await init.finalize?.(pass.scope)) {
          this.removeFinalizer(key);
          return undefined;
        }
      } else {
        this.ensureFinalizer(pass.scope);
        completed = true;
        for (const s of init.steps) {
          step = s.name;
          const outcome = await s.run(pass.scope);
          if (outcome?.requeueAfterMs !== undefined) result = { requeueAfterMs: outcome.requeueAfterMs };
          if (outcome?.stop) {
            completed = false;
            break;
          }
        }
      }
    } catch (err) {
      if (signal.aborted) throw err;
      failure = failureOf(err, step);
      completed = false;
      result = { error: err };
    }
    await pass.write({ failure, completed });
    if (failure) {
      const text = `${init.kind} ${key}: ${failure.step}: ${failure.reason}: ${failure.message}`;
      if (failure.terminal) {
        this.log.warn(`stalled: ${text}`);
        init.event?.(pass.scope.object, 'Warning', failure.reason, failure.message);
      }
    }
    return result;
  }

  private holdsFinalizer(object: ObjectOf<K>): boolean {
    const f = this.init.finalizer;
    return f === undefined || Boolean(object.metadata.finalizers?.includes(f));
  }

  /** Adds the finalizer and goes on with the written object in this same pass (waiting for the watch to
   *  bring the key back would put the object behind every other queued key). */
  private ensureFinalizer(scope: Scope<K, P>): void {
    const f = this.init.finalizer;
    const object = scope.object;
    if (f === undefined || object.metadata.finalizers?.includes(f)) return;
    scope.object = this.store.update({
      ...object,
      metadata: { ...object.metadata, finalizers: [...(object.metadata.finalizers ?? []), f] },
    }) as ObjectOf<K>;
  }

  private removeFinalizer(key: string): void {
    if (this.init.finalizer !== undefined)
      removeFinalizer(this.store, this.init.kind, key, this.init.finalizer);
  }
}

/** Drops `finalizer` from the object as it is now (a pass may have written it since it read it). */
export function removeFinalizer(store: Store, kind: string, key: string, finalizer: string): void {
  const fresh = store.get(objectKey(kind, key));
  if (!fresh?.metadata.finalizers?.includes(finalizer)) return;
  store.update({
    ...fresh,
    metadata: { ...fresh.metadata, finalizers: fresh.metadata.finalizers.filter((f) => f !== finalizer) },
  });
}

/** The state of one pass: its scope and the status changes queued so far. */
class Pass<K extends string, P extends object> {
  readonly scope: Scope<K, P>;
  private readonly store: Store;
  private readonly init: ReconcilerInit<K, P>;
  private queued: ((status: StatusOf<K>, object: ObjectOf<K>) => void)[] = [];

  constructor(
    store: Store,
    init: ReconcilerInit<K, P>,
    key: string,
    object: ObjectOf<K>,
    signal: AbortSignal,
  ) {
    this.store = store;
    this.init = init;
    this.scope = {
      key,
      object,
      generation: object.metadata.generation ?? 1,
      signal,
      data: init.data?.() ?? ({} as P),
      status: (mutate) => this.queued.push(mutate),
      progress: () => this.write({ completed: false, progress: true }),
    };
  }

  /** The pass's status write: a fresh copy, the kind's facts, every queued change, the outcome, the
   *  summary; stored only when it differs from what is there. */
  async write(outcome: { failure?: Failure; completed: boolean; progress?: boolean }): Promise<void> {
    const { init, scope } = this;
    const generation = scope.generation;
    const queued = this.queued.splice(0);
    await updateStatus(this.store, objectKey(init.kind, scope.key), (status, object) => {
      const s = status as StatusOf<K> & BaseStatus;
      const before = structuredClone(s.conditions ?? []);
      s.observedGeneration = generation;
      init.always?.(status, object, generation);
      for (const mutate of queued) mutate(status, object);
      const f = outcome.failure;
      if (f) {
        init.failed?.(status, f, object);
        if (f.terminal) markStalled(s, f.reason, f.message, generation);
        setCondition(
          s,
          {
            type: SYNCED,
            status: 'False',
            reason: f.reason,
            message: `${f.step}: ${f.message}${f.terminal ? '' : ' (retrying with backoff)'}`,
          },
          generation,
        );
      } else if (!outcome.progress) {
        if (outcome.completed) removeCondition(s, STALLED);
        setCondition(
          s,
          { type: SYNCED, status: 'True', reason: SYNCED_REASON, message: 'the last reconcile succeeded' },
          generation,
        );
      }
      init.summarise(status, generation);
      explainNotReady(s, generation);
      keepTransitionTimes(s, before);
    });
  }
}

/** A condition's lastTransitionTime moves only when its status differs from the stored one: a pass may
 *  set a condition more than once on the way (summarised, then explained by a failure). */
function keepTransitionTimes(status: BaseStatus, before: Condition[]): void {
  for (const c of status.conditions ?? []) {
    const was = before.find((b) => b.type === c.type);
    if (was && was.status === c.status) c.lastTransitionTime = was.lastTransitionTime;
  }
}

/** A pass that failed explains a Ready that is not True (a stalled object says so already). */
function explainNotReady(status: BaseStatus, generation: number): void {
  const synced = getCondition(status, SYNCED);
  const ready = getCondition(status, 'Ready');
  if (synced?.status !== 'False' || ready?.status === 'True' || getCondition(status, STALLED)) return;
  setCondition(
    status,
    { type: 'Ready', status: 'False', reason: synced.reason, message: synced.message },
    generation,
  );
}

/** The reason and message of what a step threw: a TerminalError's or a DomainActionError's `reason`,
 *  a DriverError's `code`, else `<Step>Failed`. */
export function failureOf(err: unknown, step: string): Failure {
  const e = err as { reason?: unknown; code?: unknown; message?: unknown };
  const named = (v: unknown) => (typeof v === 'string' && /^[A-Z][A-Za-z0-9]*$/.test(v) ? v : undefined);
  const reason =
    named(e?.reason) ?? named(e?.code) ?? `${step.charAt(0).toUpperCase()}${step.slice(1)}Failed`;
  const message = err instanceof Error ? err.message : String(err);
  return { step, reason, message, terminal: isTerminalError(err) };
}
