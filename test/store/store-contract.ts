// The contract every Store must meet (src/store/store.ts): CRUD, generation, the status
// subresource, optimistic concurrency, finalizers, selectors, pagination, watch and dry runs, with
// Kubernetes semantics. Run it against an implementation with runStoreContract(name, factory).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { XObject } from '../../src/model/object.ts';
import {
  AlreadyExistsError,
  BadRequestError,
  ConflictError,
  InvalidSelectorError,
  NotFoundError,
  type StoreError,
} from '../../src/store/errors.ts';
import type { Store, WatchEvent } from '../../src/store/store.ts';

export interface StoreFactoryOptions {
  /** Host is cluster-scoped; every other kind is namespaced. */
  namespaced: (kind: string) => boolean;
  historySize: number;
}

/** Returns a new, empty store. The contract closes it after each test. */
export type StoreFactory = (opts: StoreFactoryOptions) => Store | Promise<Store>;

const SI = 'ServiceInstance';
const API = 'xenos.io/v1alpha1';
const RFC3339_SECONDS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function instance(
  name: string,
  opts: { namespace?: string; labels?: Record<string, string>; spec?: Record<string, unknown> } = {},
): XObject {
  return {
    apiVersion: API,
    kind: SI,
    metadata: { name, namespace: opts.namespace ?? 'default', labels: opts.labels },
    spec: opts.spec ?? { templateRef: { name: 'web' } },
  };
}

function host(name: string): XObject {
  return { apiVersion: API, kind: 'Host', metadata: { name }, spec: {} };
}

/** The error `fn` throws (fails the test if it returns). */
function thrown(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    return err as StoreError;
  }
  throw new Error('expected an error, but the call returned');
}

function names(items: XObject[]): string[] {
  return items.map((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`);
}

/** Collects events from a watch; `stop` is called by the contract's afterEach. */
function recorder(): { events: WatchEvent[]; seen: () => string[] } {
  const events: WatchEvent[] = [];
  return { events, seen: () => events.map((e) => `${e.type} ${e.object.metadata.name}`) };
}

export function runStoreContract(name: string, factory: StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    const stops: (() => void)[] = [];
    const open = async (historySize = 10_000) =>
      factory({ namespaced: (kind) => kind !== 'Host', historySize });
    const watch = (s: Store, kind: string, opts: Parameters<Store['watch']>[1] = {}) => {
      const r = recorder();
      stops.push(s.watch(kind, opts, (ev) => r.events.push(ev)));
      return r;
    };

    beforeEach(async () => {
      store = await open();
    });
    afterEach(() => {
      for (const stop of stops.splice(0)) stop();
      store.close();
    });

    describe('create and get', () => {
      it('assigns uid, creationTimestamp, generation 1 and the new revision as resourceVersion', () => {
        const before = Number(store.revision());
        const created = store.create(instance('web'));
        expect(created.metadata.uid).toMatch(UUID);
        expect(created.metadata.creationTimestamp).toMatch(RFC3339_SECONDS);
        expect(created.metadata.generation).toBe(1);
        expect(Number(created.metadata.resourceVersion)).toBeGreaterThan(before);
        expect(store.revision()).toBe(created.metadata.resourceVersion);
        expect(store.get({ kind: SI, namespace: 'default', name: 'web' })).toEqual(created);
      });

      it('ignores server-owned fields and status sent by the client', () => {
        const obj = instance('web');
        obj.metadata = {
          ...obj.metadata,
          uid: 'mine',
          generation: 7,
          resourceVersion: '999',
          creationTimestamp: '2001-01-01T00:00:00Z',
          deletionTimestamp: '2001-01-01T00:00:00Z',
        };
        obj.status = { phase: 'Running' };
        const created = store.create(obj);
        expect(created.metadata.uid).not.toBe('mine');
        expect(created.metadata.generation).toBe(1);
        expect(created.metadata.creationTimestamp).not.toBe('2001-01-01T00:00:00Z');
        expect(created.metadata.deletionTimestamp).toBeUndefined();
        expect(created.status).toBeUndefined();
      });

      it('keeps labels, annotations, finalizers and ownerReferences as given', () => {
        const obj = instance('web', { labels: { app: 'web' } });
        obj.metadata.annotations = { note: 'x' };
        obj.metadata.finalizers = ['xenos.io/domain'];
        obj.metadata.ownerReferences = [{ apiVersion: API, kind: 'ServiceDeployment', name: 'd', uid: 'u1' }];
        const created = store.create(obj);
        const got = store.get({ kind: SI, namespace: 'default', name: 'web' })!;
        for (const o of [created, got]) {
          expect(o.metadata.labels).toEqual({ app: 'web' });
          expect(o.metadata.annotations).toEqual({ note: 'x' });
          expect(o.metadata.finalizers).toEqual(['xenos.io/domain']);
          expect(o.metadata.ownerReferences).toEqual(obj.metadata.ownerReferences);
        }
      });

      it('refuses a second create with AlreadyExistsError (409) and keeps the first', () => {
        const first = store.create(instance('web'));
        const err = thrown(() => store.create(instance('web', { spec: { templateRef: { name: 'other' } } })));
        expect(err).toBeInstanceOf(AlreadyExistsError);
        expect(err.code).toBe(409);
        expect([err.kind, err.namespace, err.objectName]).toEqual([SI, 'default', 'web']);
        expect(store.get({ kind: SI, namespace: 'default', name: 'web' })).toEqual(first);
      });

      it('keeps the same name in different namespaces apart, and kinds apart', () => {
        store.create(instance('web', { namespace: 'a', spec: { n: 1 } }));
        store.create(instance('web', { namespace: 'b', spec: { n: 2 } }));
        expect(store.get({ kind: SI, namespace: 'a', name: 'web' })!.spec).toEqual({ n: 1 });
        expect(store.get({ kind: SI, namespace: 'b', name: 'web' })!.spec).toEqual({ n: 2 });
        expect(store.get({ kind: 'ServiceTemplate', namespace: 'a', name: 'web' })).toBeUndefined();
      });

      it('stores cluster-scoped kinds under namespace "" with no metadata.namespace', () => {
        const created = store.create(host('h1'));
        expect(created.metadata.namespace).toBeUndefined();
        expect(store.get({ kind: 'Host', namespace: '', name: 'h1' })).toEqual(created);
        expect(names(store.list('Host').items)).toEqual(['/h1']);
      });

      it('returns undefined for a missing object, NotFoundError (404) on update or delete', () => {
        expect(store.get({ kind: SI, namespace: 'default', name: 'nope' })).toBeUndefined();
        const upd = thrown(() => store.update(instance('nope')));
        expect(upd).toBeInstanceOf(NotFoundError);
        expect(upd.code).toBe(404);
        expect(upd.message).toContain('serviceinstances "nope" not found');
        const del = thrown(() => store.delete({ kind: SI, namespace: 'default', name: 'nope' }));
        expect(del).toBeInstanceOf(NotFoundError);
      });

      it('rejects an object without a valid name with BadRequestError (400) and writes nothing', () => {
        const rev = store.revision();
        for (const bad of ['', 'Web', 'a_b', '-a']) {
          const err = thrown(() => store.create(instance(bad)));
          expect(err).toBeInstanceOf(BadRequestError);
          expect(err.code).toBe(400);
          expect(err.message).toContain('metadata.name');
        }
        expect(store.revision()).toBe(rev);
      });

      it('moves the revision forward by one per write, across kinds', () => {
        const a = Number(store.create(instance('a')).metadata.resourceVersion);
        const b = Number(store.create(host('h')).metadata.resourceVersion);
        const c = Number(store.update({ ...instance('a'), spec: { x: 1 } }).metadata.resourceVersion);
        expect([b - a, c - b]).toEqual([1, 1]);
      });

      it('returns copies: changing a returned object does not change the store', () => {
        const created = store.create(instance('web'));
        (created.spec as { templateRef: { name: string } }).templateRef = { name: 'changed' };
        const got = store.get({ kind: SI, namespace: 'default', name: 'web' })!;
        expect(got.spec).toEqual({ templateRef: { name: 'web' } });
        got.metadata.labels = { x: 'y' };
        expect(store.get({ kind: SI, namespace: 'default', name: 'web' })!.metadata.labels).toBeUndefined();
      });
    });

    describe('update', () => {
      it('bumps generation when spec changes, not when only metadata changes', () => {
        const v1 = store.create(instance('web'));
        const v2 = store.update({ ...v1, spec: { templateRef: { name: 'db' } } });
        expect(v2.metadata.generation).toBe(2);
        const v3 = store.update({ ...v2, metadata: { ...v2.metadata, labels: { tier: 'front' } } });
        expect(v3.metadata.generation).toBe(2);
        expect(v3.metadata.labels).toEqual({ tier: 'front' });
        expect(Number(v3.metadata.resourceVersion)).toBeGreaterThan(Number(v2.metadata.resourceVersion));
        // Same spec with keys in another order is the same spec.
        const v4 = store.update({
          ...v3,
          spec: { templateRef: { name: 'db' } },
          metadata: { ...v3.metadata },
        });
        expect(v4.metadata.generation).toBe(2);
      });

      it('ignores status and server-owned metadata on the main resource', () => {
        const v1 = store.create(instance('web'));
        const v2 = store.update({
          ...v1,
          metadata: {
            ...v1.metadata,
            uid: 'other',
            generation: 42,
            creationTimestamp: '2001-01-01T00:00:00Z',
            deletionTimestamp: '2001-01-01T00:00:00Z',
            labels: { a: 'b' },
          },
          status: { phase: 'Running' },
        });
        expect(v2.metadata.uid).toBe(v1.metadata.uid);
        expect(v2.metadata.generation).toBe(1);
        expect(v2.metadata.creationTimestamp).toBe(v1.metadata.creationTimestamp);
        expect(v2.metadata.deletionTimestamp).toBeUndefined();
        expect(v2.status).toBeUndefined();
        expect(v2.metadata.labels).toEqual({ a: 'b' });
      });

      it('takes only status on the status subresource, and keeps generation', () => {
        const v1 = store.create(instance('web'));
        const v2 = store.update(
          {
            ...v1,
            metadata: { ...v1.metadata, labels: { ignored: 'yes' } },
            spec: { templateRef: { name: 'ignored' } },
            status: { phase: 'Running', observedGeneration: 1 },
          },
          { subresource: 'status' },
        );
        expect(v2.status).toEqual({ phase: 'Running', observedGeneration: 1 });
        expect(v2.spec).toEqual(v1.spec);
        expect(v2.metadata.labels).toBeUndefined();
        expect(v2.metadata.generation).toBe(1);
        // A later main-resource update keeps the status.
        const v3 = store.update({ ...v2, spec: { templateRef: { name: 'db' } }, status: undefined });
        expect(v3.status).toEqual({ phase: 'Running', observedGeneration: 1 });
        expect(v3.metadata.generation).toBe(2);
      });

      it('answers a stale resourceVersion with ConflictError (409) and changes nothing', () => {
        const v1 = store.create(instance('web'));
        const v2 = store.update({ ...v1, spec: { n: 1 } });
        for (const sub of [undefined, 'status'] as const) {
          const err = thrown(() =>
            store.update({ ...v1, spec: { n: 2 }, status: { phase: 'x' } }, { subresource: sub }),
          );
          expect(err).toBeInstanceOf(ConflictError);
          expect(err.code).toBe(409);
          expect(err.message).toBe(
            'Operation cannot be fulfilled on serviceinstances "web": the object has been modified; ' +
              'please apply your changes to the latest version and try again',
          );
        }
        expect(store.get({ kind: SI, namespace: 'default', name: 'web' })).toEqual(v2);
      });

      it('updates unconditionally when no resourceVersion is given', () => {
        const v1 = store.create(instance('web'));
        store.update({ ...v1, spec: { n: 1 } });
        const { resourceVersion: _, ...meta } = v1.metadata;
        const v3 = store.update({ ...v1, metadata: meta, spec: { n: 2 } });
        expect(v3.spec).toEqual({ n: 2 });
        expect(v3.metadata.generation).toBe(3);
      });

      it('does not write, bump the revision or emit an event for an update that changes nothing', () => {
        const v1 = store.create(instance('web'));
        const w = watch(store, SI);
        const same = store.update({ ...v1 });
        const sameStatus = store.update({ ...v1 }, { subresource: 'status' });
        expect(same.metadata.resourceVersion).toBe(v1.metadata.resourceVersion);
        expect(sameStatus.metadata.resourceVersion).toBe(v1.metadata.resourceVersion);
        expect(store.revision()).toBe(v1.metadata.resourceVersion);
        expect(w.events).toEqual([]);
      });
    });

    describe('delete and finalizers', () => {
      it('removes an object without finalizers and returns its last state', () => {
        const v1 = store.create(instance('web'));
        const w = watch(store, SI);
        const gone = store.delete({ kind: SI, namespace: 'default', name: 'web' });
        expect(gone.metadata.uid).toBe(v1.metadata.uid);
        expect(store.get({ kind: SI, namespace: 'default', name: 'web' })).toBeUndefined();
        expect(store.list(SI).items).toEqual([]);
        expect(w.seen()).toEqual(['DELETED web']);
        expect(Number(w.events[0].object.metadata.resourceVersion)).toBe(Number(store.revision()));
        const again = store.create(instance('web'));
        expect(again.metadata.uid).not.toBe(v1.metadata.uid);
        expect(again.metadata.generation).toBe(1);
      });

      it('with finalizers, marks deletionTimestamp and goes only when the finalizers are emptied', () => {
        const obj = instance('web');
        obj.metadata.finalizers = ['xenos.io/domain'];
        store.create(obj);
        const w = watch(store, SI);
        const key = { kind: SI, namespace: 'default', name: 'web' };
        const marked = store.delete(key);
        expect(marked.metadata.deletionTimestamp).toMatch(RFC3339_SECONDS);
        expect(marked.metadata.generation).toBe(2);
        expect(store.get(key)).toEqual(marked);
        // A second delete changes nothing; deletionTimestamp cannot be cleared by a client.
        expect(store.delete(key)).toEqual(marked);
        const kept = store.update({
          ...marked,
          metadata: { ...marked.metadata, deletionTimestamp: undefined },
        });
        expect(kept.metadata.deletionTimestamp).toBe(marked.metadata.deletionTimestamp);
        // Status can still be written while finalizing.
        const st = store.update({ ...kept, status: { phase: 'Terminating' } }, { subresource: 'status' });
        const last = store.update({ ...st, metadata: { ...st.metadata, finalizers: [] } });
        expect(last.metadata.deletionTimestamp).toBe(marked.metadata.deletionTimestamp);
        expect(store.get(key)).toBeUndefined();
        expect(w.seen()).toEqual(['MODIFIED web', 'MODIFIED web', 'DELETED web']);
        expect(w.events[2].object.status).toEqual({ phase: 'Terminating' });
      });

      it('checks delete preconditions: a wrong uid or resourceVersion is a ConflictError', () => {
        const v1 = store.create(instance('web'));
        const key = { kind: SI, namespace: 'default', name: 'web' };
        const uidErr = thrown(() => store.delete(key, { preconditions: { uid: 'other' } }));
        expect(uidErr).toBeInstanceOf(ConflictError);
        expect(uidErr.message).toContain('Precondition failed: UID in precondition: other');
        const rvErr = thrown(() =>
          store.delete(key, { preconditions: { resourceVersion: '1' + v1.metadata.resourceVersion } }),
        );
        expect(rvErr).toBeInstanceOf(ConflictError);
        expect(store.get(key)).toEqual(v1);
        store.delete(key, {
          preconditions: { uid: v1.metadata.uid, resourceVersion: v1.metadata.resourceVersion },
        });
        expect(store.get(key)).toBeUndefined();
      });
    });

    describe('list', () => {
      beforeEach(() => {
        store.create(instance('a1', { namespace: 'a', labels: { app: 'web', tier: 'front' } }));
        store.create(instance('a2', { namespace: 'a', labels: { app: 'db' } }));
        store.create(instance('b1', { namespace: 'b', labels: { app: 'web', tier: 'back' } }));
        store.create(instance('b2', { namespace: 'b' }));
        store.create(host('h1'));
      });

      it('lists one kind, all namespaces or one, in namespace/name order, at the current revision', () => {
        const all = store.list(SI);
        expect(names(all.items)).toEqual(['a/a1', 'a/a2', 'b/b1', 'b/b2']);
        expect(all.resourceVersion).toBe(store.revision());
        expect(all.continue).toBeUndefined();
        expect(names(store.list(SI, { namespace: 'b' }).items)).toEqual(['b/b1', 'b/b2']);
        expect(store.list(SI, { namespace: 'none' }).items).toEqual([]);
      });

      it.each([
        ['app=web', ['a/a1', 'b/b1']],
        ['app==web', ['a/a1', 'b/b1']],
        ['app!=web', ['a/a2', 'b/b2']],
        ['app in (web,db)', ['a/a1', 'a/a2', 'b/b1']],
        ['app notin (web)', ['a/a2', 'b/b2']],
        ['tier', ['a/a1', 'b/b1']],
        ['!tier', ['a/a2', 'b/b2']],
        ['app=web,tier=back', ['b/b1']],
        ['app=web, tier notin (back)', ['a/a1']],
        ['', ['a/a1', 'a/a2', 'b/b1', 'b/b2']],
      ])('selects labels with %j', (sel, want) => {
        expect(names(store.list(SI, { labelSelector: sel }).items)).toEqual(want);
      });

      it.each([
        ['metadata.name=a2', ['a/a2']],
        ['metadata.name!=a2', ['a/a1', 'b/b1', 'b/b2']],
        ['metadata.namespace==b', ['b/b1', 'b/b2']],
        ['metadata.namespace=b,metadata.name!=b1', ['b/b2']],
      ])('selects fields with %j', (sel, want) => {
        expect(names(store.list(SI, { fieldSelector: sel }).items)).toEqual(want);
      });

      it('rejects bad selectors with InvalidSelectorError (400) saying what is wrong', () => {
        for (const [sel, said] of [
          ['app in web', 'expected "(" after "in"'],
          ['app=web,', 'expected a label key'],
          ['a b', 'expected an operator'],
        ]) {
          const err = thrown(() => store.list(SI, { labelSelector: sel }));
          expect(err).toBeInstanceOf(InvalidSelectorError);
          expect(err.code).toBe(400);
          expect(err.message).toContain(said);
        }
        const field = thrown(() => store.list(SI, { fieldSelector: 'spec.host=x' }));
        expect(field).toBeInstanceOf(InvalidSelectorError);
        expect(field.message).toContain('field label not supported: "spec.host"');
      });

      it('pages with limit and continue, every page at the first page revision', () => {
        for (let i = 0; i < 5; i++)
          store.create(instance(`c${i}`, { namespace: 'c', labels: { app: 'web' } }));
        const seen: string[] = [];
        const rvs = new Set<string>();
        let cont: string | undefined;
        let pages = 0;
        do {
          const page = store.list(SI, { limit: 3, continue: cont });
          expect(page.items.length).toBeLessThanOrEqual(3);
          seen.push(...names(page.items));
          rvs.add(page.resourceVersion);
          cont = page.continue;
          pages++;
          if (pages === 1) store.create(instance('zz', { namespace: 'c' })); // written between pages
        } while (cont);
        expect(pages).toBe(4);
        expect(seen.slice(0, 9)).toEqual(names(store.list(SI).items).slice(0, 9));
        expect(rvs.size).toBe(1);
        // With a selector, pages hold only matching objects and the last one has no continue.
        const p1 = store.list(SI, { labelSelector: 'app=web', limit: 4 });
        expect(names(p1.items)).toEqual(['a/a1', 'b/b1', 'c/c0', 'c/c1']);
        const p2 = store.list(SI, { labelSelector: 'app=web', limit: 4, continue: p1.continue });
        expect(names(p2.items)).toEqual(['c/c2', 'c/c3', 'c/c4']);
        expect(p2.continue).toBeUndefined();
        // Within one namespace.
        const n1 = store.list(SI, { namespace: 'c', limit: 2 });
        const n2 = store.list(SI, { namespace: 'c', limit: 10, continue: n1.continue });
        expect(names([...n1.items, ...n2.items])).toEqual(['c/c0', 'c/c1', 'c/c2', 'c/c3', 'c/c4', 'c/zz']);
      });

      it('rejects a mangled continue token with BadRequestError (400)', () => {
        const err = thrown(() => store.list(SI, { limit: 1, continue: 'not-a-token' }));
        expect(err).toBeInstanceOf(BadRequestError);
        expect(err.code).toBe(400);
      });
    });

    describe('watch', () => {
      it('from no resourceVersion (or "0") streams only later changes of its kind', () => {
        store.create(instance('before'));
        const live = watch(store, SI);
        const zero = watch(store, SI, { resourceVersion: '0' });
        const v = store.create(instance('web'));
        store.create(host('h1'));
        store.update({ ...v, spec: { n: 1 } });
        store.delete({ kind: SI, namespace: 'default', name: 'web' });
        const want = ['ADDED web', 'MODIFIED web', 'DELETED web'];
        expect(live.seen()).toEqual(want);
        expect(zero.seen()).toEqual(want);
        expect(live.events[1].object.spec).toEqual({ n: 1 });
      });

      it('filters by namespace and field selector', () => {
        const ns = watch(store, SI, { namespace: 'b' });
        const byName = watch(store, SI, { fieldSelector: 'metadata.name=x' });
        store.create(instance('x', { namespace: 'a' }));
        store.create(instance('y', { namespace: 'b' }));
        expect(ns.seen()).toEqual(['ADDED y']);
        expect(byName.seen()).toEqual(['ADDED x']);
      });

      it('replays every change after a list revision, then streams live ones, in order', () => {
        store.create(instance('a'));
        const listed = store.list(SI);
        const b = store.create(instance('b'));
        store.update({ ...b, status: { phase: 'Running' } }, { subresource: 'status' });
        store.delete({ kind: SI, namespace: 'default', name: 'a' });
        const w = watch(store, SI, { resourceVersion: listed.resourceVersion });
        expect(w.seen()).toEqual(['ADDED b', 'MODIFIED b', 'DELETED a']);
        store.create(instance('c'));
        expect(w.seen()).toEqual(['ADDED b', 'MODIFIED b', 'DELETED a', 'ADDED c']);
        const revs = w.events.map((e) => Number(e.object.metadata.resourceVersion));
        expect([...revs].sort((x, y) => x - y)).toEqual(revs);
        expect(revs[0]).toBeGreaterThan(Number(listed.resourceVersion));
      });

      it('turns label changes into ADDED/DELETED for a selecting watch', () => {
        const v1 = store.create(instance('web'));
        const w = watch(store, SI, { labelSelector: 'app=web' });
        const v2 = store.update({ ...v1, metadata: { ...v1.metadata, labels: { app: 'web' } } });
        const v3 = store.update({ ...v2, spec: { n: 1 } });
        store.update({ ...v3, metadata: { ...v3.metadata, labels: { app: 'db' } } });
        expect(w.seen()).toEqual(['ADDED web', 'MODIFIED web', 'DELETED web']);
        // An object that goes away while its last update moves it out of the selector is still DELETED.
        const f = instance('fin', { labels: { app: 'web' } });
        f.metadata.finalizers = ['x'];
        store.create(f);
        const marked = store.delete({ kind: SI, namespace: 'default', name: 'fin' });
        store.update({ ...marked, metadata: { ...marked.metadata, finalizers: [], labels: { app: 'db' } } });
        expect(w.seen().slice(3)).toEqual(['ADDED fin', 'MODIFIED fin', 'DELETED fin']);
      });

      it('replays from the table what is older than the kept history: each changed object once, latest state', async () => {
        const small = await open(3);
        try {
          const first = small.create(instance('o0'));
          for (let i = 1; i < 6; i++) small.create(instance(`o${i}`));
          const o1 = small.get({ kind: SI, namespace: 'default', name: 'o1' })!;
          small.update({ ...o1, metadata: { ...o1.metadata, labels: { moved: 'yes' } } });
          small.delete({ kind: SI, namespace: 'default', name: 'o2' });
          const events: string[] = [];
          const stop = small.watch(SI, { resourceVersion: first.metadata.resourceVersion }, (ev) =>
            events.push(`${ev.type} ${ev.object.metadata.name}`),
          );
          small.create(instance('o6'));
          stop();
          // o3 and o4 from the table (o1 and o2 changed again later, within the kept history), then the
          // kept history's last three changes exactly, then live.
          expect(events).toEqual([
            'MODIFIED o3',
            'MODIFIED o4',
            'ADDED o5',
            'MODIFIED o1',
            'DELETED o2',
            'ADDED o6',
          ]);
        } finally {
          small.close();
        }
      });

      it('rejects a resourceVersion that is not a revision with BadRequestError', () => {
        expect(thrown(() => store.watch(SI, { resourceVersion: 'abc' }, () => {}))).toBeInstanceOf(
          BadRequestError,
        );
      });

      it('removes a listener that throws, without failing the write or starving the others', () => {
        let calls = 0;
        stops.push(
          store.watch(SI, {}, () => {
            calls++;
            throw new Error('listener bug');
          }),
        );
        const other = watch(store, SI);
        const logged = silenceConsole();
        try {
          store.create(instance('a'));
          store.create(instance('b'));
        } finally {
          logged.restore();
        }
        expect(calls).toBe(1);
        expect(other.seen()).toEqual(['ADDED a', 'ADDED b']);
        expect(store.get({ kind: SI, namespace: 'default', name: 'b' })).toBeDefined();
      });

      it('delivers in order to every watcher when a listener writes from its callback', () => {
        const order: string[] = [];
        stops.push(
          store.watch(SI, {}, (ev) => {
            if (ev.type === 'ADDED' && ev.object.metadata.name === 'a') store.create(instance('b'));
          }),
        );
        stops.push(store.watch(SI, {}, (ev) => order.push(`${ev.type} ${ev.object.metadata.name}`)));
        store.create(instance('a'));
        expect(order).toEqual(['ADDED a', 'ADDED b']);
      });

      it('hands watchers objects they cannot change under each other', () => {
        const w1 = watch(store, SI);
        const w2 = watch(store, SI);
        store.create(instance('a'));
        expect(() => {
          (w1.events[0].object.metadata as { name: string }).name = 'changed';
        }).toThrow();
        expect(w2.events[0].object.metadata.name).toBe('a');
      });

      it('stops delivering once stopped', () => {
        const events: string[] = [];
        const stop = store.watch(SI, {}, (ev) => events.push(ev.object.metadata.name));
        store.create(instance('a'));
        stop();
        store.create(instance('b'));
        expect(events).toEqual(['a']);
      });
    });

    describe('dry run', () => {
      it('computes creates, updates and deletes but writes nothing and emits nothing', () => {
        const w = watch(store, SI);
        const rev0 = store.revision();
        const dry = store.create(instance('web'), { dryRun: true });
        expect(dry.metadata.uid).toMatch(UUID);
        expect(dry.metadata.generation).toBe(1);
        expect(store.get({ kind: SI, namespace: 'default', name: 'web' })).toBeUndefined();
        expect(store.revision()).toBe(rev0);

        const real = store.create(instance('web'));
        const rev1 = store.revision();
        expect(Number(rev1)).toBe(Number(rev0) + 1);
        const upd = store.update({ ...real, spec: { n: 1 } }, { dryRun: true });
        expect(upd.metadata.generation).toBe(2);
        expect(upd.spec).toEqual({ n: 1 });
        expect(
          thrown(() =>
            store.update(
              { ...real, metadata: { ...real.metadata, resourceVersion: '1' + rev1 } },
              { dryRun: true },
            ),
          ),
        ).toBeInstanceOf(ConflictError);
        const del = store.delete({ kind: SI, namespace: 'default', name: 'web' }, { dryRun: true });
        expect(del.metadata.uid).toBe(real.metadata.uid);
        expect(thrown(() => store.create(instance('web'), { dryRun: true }))).toBeInstanceOf(
          AlreadyExistsError,
        );

        expect(store.revision()).toBe(rev1);
        expect(store.get({ kind: SI, namespace: 'default', name: 'web' })).toEqual(real);
        expect(w.seen()).toEqual(['ADDED web']);
      });
    });

    describe('group commit', () => {
      it('resolves each write with its result; a failing write rejects alone and the others commit', async () => {
        store.create(instance('taken'));
        const w = watch(store, SI);
        const results = await Promise.allSettled([
          store.groupCommit(() => store.create(instance('a'))),
          store.groupCommit(() => store.create(instance('taken'))),
          store.groupCommit(() => {
            store.create(instance('half'));
            throw new Error('the caller gave up after writing');
          }),
          store.groupCommit(() => store.create(instance('b'))),
        ]);
        expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
        expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(AlreadyExistsError);
        expect((results[0] as PromiseFulfilledResult<XObject>).value.metadata.name).toBe('a');
        // The failed writes left nothing behind, not even the part written before the throw.
        expect(names(store.list(SI).items)).toEqual(['default/a', 'default/b', 'default/taken']);
        expect(w.seen()).toEqual(['ADDED a', 'ADDED b']);
        // Revisions stay consecutive: a rolled-back write takes no revision.
        const a = Number((results[0] as PromiseFulfilledResult<XObject>).value.metadata.resourceVersion);
        const b = Number((results[3] as PromiseFulfilledResult<XObject>).value.metadata.resourceVersion);
        expect(b).toBe(a + 1);
        expect(store.revision()).toBe(String(b));
      });

      it('delivers the watch events of a batch before its writes are acknowledged', async () => {
        const w = watch(store, SI);
        const done = store.groupCommit(() => store.create(instance('x')));
        expect(w.seen()).toEqual([]); // nothing before the batch commits
        const created = await done;
        expect(w.seen()).toEqual(['ADDED x']);
        expect(store.get({ kind: SI, namespace: 'default', name: 'x' })).toEqual(created);
      });
    });
  });
}

/** Swallows console.error output for a moment: a removed listener is logged, maybe there. */
function silenceConsole(): { restore: () => void } {
  const original = console.error;
  console.error = () => {};
  return {
    restore: () => {
      console.error = original;
    },
  };
}
