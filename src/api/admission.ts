// What a request may do beyond its schema, decided before it costs anything: an instance-scoped
// principal (a service's token) writes only its own part of its instance's status — a patch reaching
// elsewhere is refused before it is applied, and the result is checked entry by entry after — each
// principal creates Events at a bounded rate (429 with Retry-After before the body is even read), and
// the spec of a kind that is one request (a ServiceMigration) cannot change once created.

import { isDeepStrictEqual } from 'node:util';
import type { ApiResource } from '../model/api-resource.ts';
import { SERVICE_MIGRATION } from '../model/kinds.ts';
import type { XObject } from '../model/object.ts';
import { SERVICE_HEALTHY } from '../model/service-instance.ts';
import { type Principal, scopedPatchProblems, scopedStatusChange } from './auth.ts';
import { EVENT_RATE_LIMIT } from './input-limits.ts';
import { TokenBuckets } from './rate-limit.ts';
import { type ApiError, errors } from './status-errors.ts';

/** The parts of a request admission looks at (a ResourceRequest has them). */
export interface AdmissionTarget {
  principal: Principal;
  resource: ApiResource;
  name?: string;
  subresource?: 'status';
}

/** An instance-scoped principal's status write: refused (403) if it changes anything but its own part. */
export function checkScopedStatus(r: AdmissionTarget, current: XObject, next: XObject): void {
  if (!r.principal.scope || r.subresource !== 'status') return;
  // Written against an older version: that is a conflict (409 from the store), not a permission matter.
  const wanted = next.metadata.resourceVersion;
  if (wanted && wanted !== current.metadata.resourceVersion) return;
  const changed = scopedStatusChange(current.status, next.status);
  if (changed.length > 0) throw scopeForbidden(r, changed);
}

/** Kinds whose spec is one request, fixed at creation: to ask for something else, create another. */
const IMMUTABLE_SPEC: ReadonlySet<string> = new Set([SERVICE_MIGRATION.kind]);

/** An update that changes the spec of such a kind: refused (422), nothing written. */
export function checkImmutableSpec(r: AdmissionTarget, current: XObject, next: XObject): void {
  if (r.subresource || !IMMUTABLE_SPEC.has(r.resource.kind)) return;
  if (isDeepStrictEqual(current.spec, next.spec)) return;
  const { plural, group, kind } = r.resource;
  throw errors.invalid({ plural, group, kind, name: r.name }, [
    {
      reason: 'FieldValueForbidden',
      field: 'spec',
      message: `field is immutable: a ${kind} is one request; create a new one (a finished one is kept, delete it when done)`,
    },
  ]);
}

/** The same rule, before a patch is applied: a patch reaching outside those parts is refused as such. */
export function checkScopedPatch(r: AdmissionTarget, type: 'json' | 'merge' | 'apply', patch: unknown): void {
  if (!r.principal.scope) return;
  const outside = scopedPatchProblems(type, patch);
  if (outside.length > 0) throw scopeForbidden(r, outside);
}

function scopeForbidden(r: AdmissionTarget, changed: string[]): ApiError {
  return errors.forbidden(
    `${r.resource.plural}.${r.resource.group} "${r.name}" is forbidden: User "${r.principal.name}" may change ` +
      `only the status.endpoints entries with source "registered" and the ${SERVICE_HEALTHY} condition of ` +
      `its instance, but this request changes ${changed.join(', ')}; leave the rest of the status as it is ` +
      `(read it first, or send a JSON patch that adds, replaces or removes only those entries)`,
  );
}

/** Event creates per principal: a token bucket each (EVENT_RATE_LIMIT unless given). */
export class EventRateLimit {
  readonly #buckets: TokenBuckets;

  constructor(init: { burst: number; perSecond: number } = EVENT_RATE_LIMIT) {
    this.#buckets = new TokenBuckets(init);
  }

  /** Spends one of the principal's tokens, or throws 429 with Retry-After. */
  admit(principal: Principal): void {
    const taken = this.#buckets.take(principal.name);
    if (taken.ok) return;
    const { burst, perSecond } = this.#buckets.limits;
    throw errors.tooManyRequests(
      `User "${principal.name}" is creating events faster than the limit of ${perSecond} per second ` +
        `(bursts of ${burst}); retry later, or record fewer events (a repeat of one event should update its count)`,
      taken.retryAfterSeconds,
    );
  }
}
