// The one place that writes status conditions, like Kubernetes' meta.SetStatusCondition and Flux's
// conditions helper: a condition's `lastTransitionTime` moves only when its `status` flips, every
// condition records the generation it was computed from, and `Ready` is summarised from the others
// (a `Stalled` condition wins, then the first dependency that is not True).

import type { BaseStatus, Condition } from '../model/object.ts';

export type ConditionStatus = Condition['status'];

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

export const READY = 'Ready';
export const STALLED = 'Stalled';

export function getCondition(status: BaseStatus | undefined, type: string): Condition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

export function isConditionTrue(status: BaseStatus | undefined, type: string): boolean {
  return getCondition(status, type)?.status === 'True';
}

/**
 * Set one condition on `status` (which the caller owns: a copy, never an object read from the store).
 * Returns true when anything about the condition changed.
 */
export function setCondition(
  status: BaseStatus,
  input: ConditionInput,
  generation: number | undefined,
  now: Date = new Date(),
): boolean {
  const conditions = status.conditions ?? [];
  status.conditions = conditions;
  const existing = conditions.find((c) => c.type === input.type);
  if (!existing) {
    const cond: Condition = { ...input, lastTransitionTime: now.toISOString() };
    if (generation !== undefined) cond.observedGeneration = generation;
    conditions.push(cond);
    return true;
  }
  let changed = false;
  if (existing.status !== input.status) {
    existing.status = input.status;
    existing.lastTransitionTime = now.toISOString();
    changed = true;
  }
  if (existing.reason !== input.reason || existing.message !== input.message) {
    existing.reason = input.reason;
    existing.message = input.message;
    changed = true;
  }
  if (generation !== undefined && existing.observedGeneration !== generation) {
    existing.observedGeneration = generation;
    changed = true;
  }
  return changed;
}

/** Remove a condition; returns true if it was there. */
export function removeCondition(status: BaseStatus, type: string): boolean {
  const conditions = status.conditions ?? [];
  const i = conditions.findIndex((c) => c.type === type);
  if (i < 0) return false;
  conditions.splice(i, 1);
  return true;
}

export interface SummariseOptions {
  /** Conditions that must all be True for Ready, in the order they are checked. */
  dependsOn: string[];
  /** Reason and message of Ready when it is True. */
  readyReason?: string;
  readyMessage?: string;
}

/**
 * Compute `Ready` from the other conditions: False with Stalled's reason when Stalled is True;
 * otherwise False/Unknown with the reason and message of the first dependency that is not True
 * (Unknown when that dependency is missing or Unknown); otherwise True.
 */
export function summariseReady(
  status: BaseStatus,
  generation: number | undefined,
  opts: SummariseOptions,
  now: Date = new Date(),
): boolean {
  const stalled = getCondition(status, STALLED);
  if (stalled?.status === 'True') {
    return setCondition(
      status,
      { type: READY, status: 'False', reason: stalled.reason, message: stalled.message },
      generation,
      now,
    );
  }
  for (const type of opts.dependsOn) {
    const cond = getCondition(status, type);
    if (cond?.status === 'True') continue;
    return setCondition(
      status,
      {
        type: READY,
        status: cond?.status === 'False' ? 'False' : 'Unknown',
        reason: cond?.reason ?? 'Progressing',
        message: cond?.message ?? `waiting for condition ${type}`,
      },
      generation,
      now,
    );
  }
  return setCondition(
    status,
    {
      type: READY,
      status: 'True',
      reason: opts.readyReason ?? 'Succeeded',
      message: opts.readyMessage ?? 'all conditions are met',
    },
    generation,
    now,
  );
}

/** Mark `status` Stalled by a terminal error (and so not Ready). */
export function markStalled(
  status: BaseStatus,
  reason: string,
  message: string,
  generation: number | undefined,
  now: Date = new Date(),
): boolean {
  const a = setCondition(status, { type: STALLED, status: 'True', reason, message }, generation, now);
  const b = summariseReady(status, generation, { dependsOn: [] }, now);
  return a || b;
}
