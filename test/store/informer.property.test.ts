// The informer's cache stays equal to the store: random sequences of creates, spec and status updates,
// deletes (with and without finalizers) and watch restarts (stop, writes meanwhile, start), checked
// after every step against a list of the store; the handlers' events, replayed onto an empty map, give
// the same objects; and HostAllocations fed from it equals a count from the store.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HostAllocations } from '../../src/cluster/allocations.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import { cacheKey, Informer } from '../../src/store/informer.ts';
import { openStore } from '../../src/store/sqlite-store.ts';
import { FUZZ_TEST_TIMEOUT_MS, fuzz } from '../fuzz.ts';

type Write =
  | { op: 'create'; name: string; host?: string; finalizer: boolean }
  | { op: 'spec'; name: string; host?: string }
  | { op: 'status'; name: string; phase: string }
  | { op: 'delete'; name: string }
  | { op: 'unfinalize'; name: string };
type Step = Write | { op: 'restart'; during: Write[] };

const name = fc.constantFrom('a', 'b', 'c', 'd', 'e');
const host = fc.option(fc.constantFrom('h1', 'h2', 'h3'), { nil: undefined });
const write: fc.Arbitrary<Write> = fc.oneof(
  fc.record({ op: fc.constant('create' as const), name, host, finalizer: fc.boolean() }),
  fc.record({ op: fc.constant('spec' as const), name, host }),
  fc.record({ op: fc.constant('status' as const), name, phase: fc.constantFrom('Pending', 'Running') }),
  fc.record({ op: fc.constant('delete' as const), name }),
  fc.record({ op: fc.constant('unfinalize' as const), name }),
);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: write },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('restart' as const), during: fc.array(write, { maxLength: 6 }) }),
  },
);

const KIND = 'ServiceInstance';

describe('Informer', () => {
  it(
    'equals the store after every create, update, delete and watch restart',
    () => {
      fc.assert(
        fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
          const store = openStore({ path: ':memory:', namespaced: () => true });
          try {
            store.create(instance('a', 'h1', false)); // something to list before the informer starts
            const informer = new Informer({ store }, { kind: KIND });
            const replayed = new Map<string, ServiceInstance>();
            const allocations = new HostAllocations();
            informer.onChange((c) => {
              if (c.type === 'DELETED') replayed.delete(cacheKey(c.object));
              else replayed.set(cacheKey(c.object), c.object);
              allocations.apply(c);
            });
            informer.start();
            const check = () => {
              const listed = store.list(KIND).items;
              const cached = [...informer.values()].sort((x, y) => cacheKey(x).localeCompare(cacheKey(y)));
              expect(cached).toEqual(listed);
              expect(new Map(replayed)).toEqual(new Map(listed.map((i) => [cacheKey(i), i])));
              for (const h of ['h1', 'h2', 'h3'])
                expect(allocations.count(h)).toBe(listed.filter((i) => i.spec?.host === h).length);
            };
            check();
            for (const s of steps) {
              if (s.op === 'restart') {
                informer.stop();
                for (const w of s.during) run(store, w);
                informer.start();
              } else run(store, s);
              check();
            }
          } finally {
            store.close();
          }
        }),
        fuzz(200),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );
});

function instance(n: string, h: string | undefined, finalizer: boolean): ServiceInstance {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: KIND,
    metadata: { name: n, namespace: 'default', ...(finalizer ? { finalizers: ['test/keep'] } : {}) },
    spec: { templateRef: { name: 'web' }, ...(h ? { host: h } : {}) },
  } as ServiceInstance;
}

/** One write; a write the store refuses (absent, already there) is part of the sequence too. */
function run(store: ReturnType<typeof openStore>, s: Write): void {
  const key = { kind: KIND, namespace: 'default', name: s.name };
  const current = store.get(key);
  switch (s.op) {
    case 'create':
      if (!current) store.create(instance(s.name, s.host, s.finalizer));
      return;
    case 'spec':
      if (current) store.update({ ...current, spec: { ...current.spec!, host: s.host } });
      return;
    case 'status':
      if (current) store.update({ ...current, status: { phase: s.phase } }, { subresource: 'status' });
      return;
    case 'delete':
      if (current) store.delete(key);
      return;
    case 'unfinalize':
      if (current) store.update({ ...current, metadata: { ...current.metadata, finalizers: [] } });
      return;
  }
}
