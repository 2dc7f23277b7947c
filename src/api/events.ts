// Core v1 Events, stored as kind `Event` so `kubectl describe` can show what happened to an
// object. Controllers call `recordEvent`; a repeat of the same type, reason and message on the
// same object bumps `count` and `lastTimestamp` instead of adding a new Event, as Kubernetes does.
// `validateEvent` is the shape every Event must have, from the API or from a peer: core v1's fields
// with their types (the message a string), a message of at most MAX_EVENT_MESSAGE_BYTES and a whole
// Event of at most MAX_EVENT_BYTES. Events expire (DEFAULT_EVENT_TTL_MS, `xenosd --event-ttl`).

import { createHash } from 'node:crypto';
import type { Log } from '../log/logger.ts';
import type { CoreEvent, EventType } from '../model/event.ts';
import { EVENT } from '../model/kinds.ts';
import type { ObjectReference, XObject } from '../model/object.ts';
import { AlreadyExistsError, ConflictError } from '../store/errors.ts';
import type { Store } from '../store/store.ts';
import { MAX_EVENT_BYTES, MAX_EVENT_MESSAGE_BYTES } from './input-limits.ts';
import { describeValue as describe, type FieldError } from './validation.ts';

export interface RecordEventOptions {
  /** Who reports it: the controller's name. */
  component?: string;
  /** Which host reports it. */
  host?: string;
}

/** Events of cluster-scoped objects (Hosts) live in this namespace, as in Kubernetes. */
export const CLUSTER_EVENTS_NAMESPACE = 'default';

function eventName(obj: ObjectReference, type: string, reason: string, message: string): string {
  const h = createHash('sha256')
    .update([obj.kind, obj.namespace ?? '', obj.name, obj.uid ?? '', type, reason, message].join('\0'))
    .digest('hex')
    .slice(0, 16);
  return `${obj.name}.${h}`;
}

/** Record (or count again) an event about `involved`. Never throws for a lost race: it retries. */
export function recordEvent(
  store: Store,
  involved: XObject | ObjectReference,
  type: EventType,
  reason: string,
  message: string,
  opts: RecordEventOptions = {},
): CoreEvent {
  const ref: ObjectReference =
    'metadata' in involved
      ? {
          apiVersion: involved.apiVersion,
          kind: involved.kind,
          name: involved.metadata.name,
          namespace: involved.metadata.namespace,
          uid: involved.metadata.uid,
          resourceVersion: involved.metadata.resourceVersion,
        }
      : involved;
  const namespace = ref.namespace || CLUSTER_EVENTS_NAMESPACE;
  // A controller's message can carry a long error text: kept to what every host accepts.
  message = truncateUtf8(message, MAX_EVENT_MESSAGE_BYTES);
  const name = eventName(ref, type, reason, message);
  for (let attempt = 0; ; attempt++) {
    const now = new Date().toISOString();
    const existing = store.get({ kind: EVENT.kind, namespace, name });
    try {
      if (existing) {
        return store.update({ ...existing, count: (existing.count ?? 1) + 1, lastTimestamp: now });
      }
      const ev: CoreEvent = {
        apiVersion: EVENT.apiVersion,
        kind: EVENT.kind,
        metadata: { name, namespace },
        involvedObject: ref,
        reason,
        message,
        type,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: opts.component, host: opts.host },
        reportingComponent: opts.component ?? '',
        reportingInstance: opts.host ?? '',
      };
      return store.create(ev);
    } catch (err) {
      if (attempt < 5 && (err instanceof ConflictError || err instanceof AlreadyExistsError)) continue;
      throw err;
    }
  }
}

/** Records Events for one controller: `(object, type, reason, message)`; a failure to record is logged,
 *  never thrown (an Event is worth less than the reconcile that reports it). The write joins the store's
 *  next group commit, so the Events of a burst of reconciles share their fsync with the status writes. */
export type EventRecorder = (involved: XObject, type: EventType, reason: string, message: string) => void;

export function eventRecorder(store: Store, opts: RecordEventOptions, log: Log): EventRecorder {
  return (involved, type, reason, message) => {
    store
      .groupCommit(() => recordEvent(store, involved, type, reason, message, opts))
      .catch((err: unknown) => {
        const m = involved.metadata;
        log.warn(
          { err },
          `recording event ${reason} for ${involved.kind} ${m.namespace ?? ''}/${m.name} failed`,
        );
      });
  };
}

/** `text` cut to at most `maxBytes` of UTF-8, ending in "..." when cut (client-go's recorders do the same). */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let out = Buffer.from(text, 'utf8')
    .subarray(0, maxBytes - 3)
    .toString('utf8');
  // A multi-byte character cut in half decodes to U+FFFD: drop it.
  if (out.endsWith('\uFFFD')) out = out.slice(0, -1);
  return `${out}...`;
}

const REFERENCE_FIELDS = ['apiVersion', 'kind', 'name', 'namespace', 'uid', 'resourceVersion', 'fieldPath'];
const STRING_FIELDS = ['reason', 'message', 'firstTimestamp', 'lastTimestamp', 'eventTime', 'action'];
const REPORTER_FIELDS = ['reportingComponent', 'reportingInstance'];
/** Every top-level field of a core v1 Event. */
const EVENT_FIELDS = new Set([
  'apiVersion',
  'kind',
  'metadata',
  'involvedObject',
  'related',
  'series',
  'source',
  'count',
  'type',
  ...STRING_FIELDS,
  ...REPORTER_FIELDS,
]);
/** Kubernetes' limit on reason, action and the reporting fields. */
const MAX_SHORT_FIELD = 128;

/** Every problem with `obj` as a core v1 Event (its metadata is the store's and the API's to check). */
export function validateEvent(event: object): FieldError[] {
  // Any object, from the API or a peer: its fields are read as unknowns and checked one by one.
  const obj: Record<string, unknown> = { ...event };
  const out: FieldError[] = [];
  const wrongType = (path: string, want: string, v: unknown) =>
    out.push({ path, reason: 'FieldValueTypeInvalid', message: `must be ${want}; got ${describe(v)}` });
  for (const key of Object.keys(obj)) {
    if (!EVENT_FIELDS.has(key))
      out.push({ path: key, reason: 'FieldValueUnknown', message: `unknown field "${key}"` });
  }
  const ref = obj.involvedObject;
  if (!isMapping(ref) || typeof ref.kind !== 'string' || typeof ref.name !== 'string') {
    out.push({
      path: 'involvedObject',
      reason: 'FieldValueRequired',
      message: 'Required value: kind and name of the object the event is about',
    });
  } else {
    for (const [key, v] of Object.entries(ref)) {
      if (!REFERENCE_FIELDS.includes(key))
        out.push({
          path: `involvedObject.${key}`,
          reason: 'FieldValueUnknown',
          message: `unknown field "${key}"`,
        });
      else if (typeof v !== 'string') wrongType(`involvedObject.${key}`, 'a string', v);
    }
  }
  for (const key of [...STRING_FIELDS, ...REPORTER_FIELDS]) {
    if (obj[key] !== undefined && typeof obj[key] !== 'string') wrongType(key, 'a string', obj[key]);
  }
  for (const key of ['reason', 'action', ...REPORTER_FIELDS]) {
    const v = obj[key];
    if (typeof v === 'string' && v.length > MAX_SHORT_FIELD)
      out.push({
        path: key,
        reason: 'FieldValueTooLong',
        message: `must have at most ${MAX_SHORT_FIELD} characters; got ${v.length}`,
      });
  }
  if (typeof obj.message === 'string') {
    const bytes = Buffer.byteLength(obj.message, 'utf8');
    if (bytes > MAX_EVENT_MESSAGE_BYTES)
      out.push({
        path: 'message',
        reason: 'FieldValueTooLong',
        message: `must be at most ${MAX_EVENT_MESSAGE_BYTES} bytes; got ${bytes} (put details in the object's status or logs)`,
      });
  }
  if (obj.type !== undefined && obj.type !== 'Normal' && obj.type !== 'Warning') {
    out.push({
      path: 'type',
      reason: 'FieldValueNotSupported',
      message: `must be one of Normal, Warning; got ${describe(obj.type)}`,
    });
  }
  if (obj.count !== undefined && !(Number.isSafeInteger(obj.count) && (obj.count as number) >= 0))
    wrongType('count', 'a whole number of at least 0', obj.count);
  if (obj.source !== undefined) {
    if (!isMapping(obj.source)) wrongType('source', 'a mapping (component, host)', obj.source);
    else
      for (const [key, v] of Object.entries(obj.source)) {
        if (key !== 'component' && key !== 'host')
          out.push({ path: `source.${key}`, reason: 'FieldValueUnknown', message: `unknown field "${key}"` });
        else if (typeof v !== 'string') wrongType(`source.${key}`, 'a string', v);
      }
  }
  if (obj.related !== undefined && !isMapping(obj.related))
    wrongType('related', 'a mapping (an object reference)', obj.related);
  if (obj.series !== undefined && !isMapping(obj.series))
    wrongType('series', 'a mapping (count, lastObservedTime)', obj.series);
  if (out.length === 0) {
    const bytes = Buffer.byteLength(JSON.stringify(obj), 'utf8');
    if (bytes > MAX_EVENT_BYTES)
      out.push({
        path: '',
        reason: 'FieldValueTooLong',
        message: `an Event may be at most ${MAX_EVENT_BYTES} bytes; this one is ${bytes}`,
      });
  }
  return out;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
