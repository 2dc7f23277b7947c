// Core v1 Events, as Xenos stores them (kind `Event`, so `kubectl describe` shows what happened to an
// object). Recording and validating them is src/api/events.ts's job; this is only their shape.

import type { ObjectReference, XObject } from './object.ts';

export type EventType = 'Normal' | 'Warning';

/** The core v1 Event shape (the fields kubectl reads). Events have no spec or status. */
export interface CoreEvent extends XObject<never, never> {
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
