// recordEvent against the real SQLite store: a repeat of the same event on the same object counts
// up instead of adding another Event; a different message is a new Event.

import { afterEach, expect, it } from 'vitest';
import { recordEvent } from '../../src/api/events.ts';
import type { CoreEvent } from '../../src/model/event.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import { openStore } from '../../src/store/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';

let store: Store | undefined;
afterEach(() => store?.close());

it('dedupes repeated events by counting them', () => {
  store = openStore({ path: ':memory:', namespaced: (k) => k !== 'Host' });
  const si = store.create<ServiceInstance>({
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name: 'web', namespace: 'default' },
    spec: { templateRef: { name: 't' } },
  });
  const first = recordEvent(store, si, 'Warning', 'CrashLoop', 'domain exited 1', {
    component: 'c',
    host: 'h1',
  });
  const second = recordEvent(store, si, 'Warning', 'CrashLoop', 'domain exited 1', {
    component: 'c',
    host: 'h1',
  });
  recordEvent(store, si, 'Normal', 'Started', 'domain started');
  const host = store.create({ apiVersion: 'xenos.io/v1alpha1', kind: 'Host', metadata: { name: 'h1' } });
  recordEvent(store, host, 'Normal', 'Joined', 'host joined');

  expect(second.metadata.name).toBe(first.metadata.name);
  const events = store.list('Event', { namespace: 'default' }).items as CoreEvent[];
  expect(events).toHaveLength(3);
  const crash = events.find((e) => e.reason === 'CrashLoop')!;
  expect(crash).toMatchObject({
    apiVersion: 'v1',
    kind: 'Event',
    count: 2,
    type: 'Warning',
    involvedObject: { kind: 'ServiceInstance', name: 'web', uid: si.metadata.uid },
    source: { component: 'c', host: 'h1' },
  });
  expect(crash.lastTimestamp >= crash.firstTimestamp).toBe(true);
  expect(events.find((e) => e.reason === 'Joined')!.involvedObject).toMatchObject({
    kind: 'Host',
    name: 'h1',
  });
});
