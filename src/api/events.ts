// Core v1 Events, stored as kind `Event` so `kubectl describe` can show what happened to an
// object. Controllers call `recordEvent`; a repeat of the same type, reason and message on the
// same object bumps `count` and `lastTimestamp` instead of adding a new Event, as Kubernetes does.

import { createHash } from 'node:crypto';
import { AlreadyExistsError, ConflictError } from '../store/errors.ts';
import type { Store } from '../store/store.ts';
import type { XObject } from './types.ts';

export const EVENT_KIND = 'Event';
export const EVENT_API_VERSION = 'v1';

export interface ObjectReference {
  apiVersion?: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

export type EventType = 'Normal' | 'Warning';

/** The core v1 Event shape (the fields kubectl reads). */
export interface CoreEvent extends XObject {
  involvedObject: ObjectReference;
  reason: string;
  message: string;
  type: EventType;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  source: { component?: string; host?: string };
  reportingComponent?: string;
  reportingInstance?: string;
}

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
  const name = eventName(ref, type, reason, message);
  for (let attempt = 0; ; attempt++) {
    const now = new Date().toISOString();
    const existing = store.get({ kind: EVENT_KIND, namespace, name }) as CoreEvent | undefined;
    try {
      if (existing) {
        return store.update({
          ...existing,
          count: (existing.count ?? 1) + 1,
          lastTimestamp: now,
        } as XObject) as CoreEvent;
      }
      const ev: CoreEvent = {
        apiVersion: EVENT_API_VERSION,
        kind: EVENT_KIND,
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
      return store.create(ev) as CoreEvent;
    } catch (err) {
      if (attempt < 5 && (err instanceof ConflictError || err instanceof AlreadyExistsError)) continue;
      throw err;
    }
  }
}
