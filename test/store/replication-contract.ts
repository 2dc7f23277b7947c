// The replication contract: what every pairing of Replicator and SyncTransport must do, run by
// replication.test.ts over the in-memory transport and by replication-libp2p.test.ts over real
// libp2p nodes on 127.0.0.1. Each harness gives n hosts (a store and a replicator each), a way to cut
// one host off and bring it back, and a rogue peer that can send anything.

import { afterEach, describe, expect, it } from 'vitest';
import { loadKinds } from '../../src/api/kinds.ts';
import { Validator } from '../../src/api/validation.ts';
import { SERVICE_INSTANCE } from '../../src/model/kinds.ts';
import type { XObject } from '../../src/model/object.ts';
import { ConflictError } from '../../src/store/errors.ts';
import type { Replicator, ReplicatorInit, ValidateObject } from '../../src/store/replication/replicator.ts';
import type { SyncTransport } from '../../src/store/replication/transport.ts';
import type { SqliteStore } from '../../src/store/sqlite-store.ts';
import { until } from '../wait.ts';

export interface ReplicaHost {
  name: string;
  store: SqliteStore;
  replicator: Replicator;
  /** The host's id on the transport. */
  id: string;
}

export interface ClusterHarness {
  hosts: ReplicaHost[];
  /** Cuts host i off from every other host; it keeps taking writes. */
  isolate(i: number): Promise<void>;
  /** Reconnects host i to every other host. */
  rejoin(i: number): Promise<void>;
  /** Host i goes down for the network: replication stopped and disconnected. */
  down(i: number): Promise<void>;
  /** Host i comes back: replication started and reconnected. */
  up(i: number): Promise<void>;
  /** A peer connected to every host that does not replicate: it sends what a test wants. */
  rogue(): Promise<SyncTransport>;
  cleanup(): Promise<void>;
}

export type MakeCluster = (n: number, init?: ReplicatorInit) => Promise<ClusterHarness>;

/** Replication settings for tests: quick anti-entropy, CRD validation. */
export const TEST_INIT: ReplicatorInit = { syncIntervalMs: 200, pushDelayMs: 2, requestTimeoutMs: 5000 };

const validator = new Validator(loadKinds());
/** The validation the daemon wires in: the object's spec and its status against the kind's CRD. */
export const crdValidate: ValidateObject = (obj) => [
  ...validator.validate(obj),
  ...validator.validate(obj, { subresource: 'status' }),
];

export const namespaced = (kind: string) => kind !== 'Host';

export function instance(name: string, template = 'web'): XObject {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name, namespace: 'default', labels: { app: name } },
    spec: { templateRef: { name: template } },
  };
}
export const key = (name: string) => ({ kind: SERVICE_INSTANCE.kind, namespace: 'default', name });

/** Every row of a store (tombstones too) with its versions, in a form that compares across hosts
 *  (resourceVersion is per host and left out; keys sorted). */
export function dump(store: SqliteStore): string {
  const rows = [...store.replicationVersions()].map((v) => {
    const r = store.replicationRow(v)!;
    const { resourceVersion: _, ...metadata } = r.object.metadata;
    return { ...r, object: { ...r.object, metadata } };
  });
  return canonical(rows);
}

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}

/** Polls until `cond` holds; fails naming `what` after `ms`. */
/** test/wait.ts's until, in the argument order this suite's callers use. */
export async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  await until(what, cond, { timeoutMs: ms, intervalMs: 10 });
}

const allAgree = (hosts: ReplicaHost[]) => {
  const first = dump(hosts[0].store);
  return hosts.every((h) => dump(h.store) === first);
};

export function runReplicationContract(name: string, makeCluster: MakeCluster): void {
  describe(`replication contract: ${name}`, () => {
    let cluster: ClusterHarness | undefined;
    const start = async (n: number, init: ReplicatorInit = {}) => {
      cluster = await makeCluster(n, { ...TEST_INIT, ...init });
      return cluster.hosts;
    };
    afterEach(async () => {
      await cluster?.cleanup();
      cluster = undefined;
    });

    it('pushes a write on A to B and C at once (no anti-entropy needed)', async () => {
      const [a, b, c] = await start(3, { syncIntervalMs: 600_000 });
      a.store.create(instance('web'));
      await waitFor(() => !!b.store.get(key('web')) && !!c.store.get(key('web')), 'web on B and C');
      const uid = a.store.get(key('web'))!.metadata.uid;
      for (const h of [b, c]) {
        const got = h.store.get(key('web'))!;
        expect(got.metadata.uid).toBe(uid);
        expect(got.metadata.generation).toBe(1);
        expect(got.spec).toEqual({ templateRef: { name: 'web' } });
      }
      expect(allAgree([a, b, c])).toBe(true);
    });

    it('resolves concurrent writes to one object on A and B to the same winner everywhere', async () => {
      const [a, b, c] = await start(3);
      a.store.create(instance('web'));
      await waitFor(() => allAgree([a, b, c]) && !!c.store.get(key('web')), 'web everywhere');
      const onA = a.store.update({ ...a.store.get(key('web'))!, spec: { templateRef: { name: 'from-a' } } });
      const onB = b.store.update({ ...b.store.get(key('web'))!, spec: { templateRef: { name: 'from-b' } } });
      expect(onA.metadata.generation).toBe(2);
      expect(onB.metadata.generation).toBe(2);
      const hlcA = a.store.replicationRow(key('web'))!.hlc;
      const hlcB = b.store.replicationRow(key('web'))!.hlc;
      const winner = hlcA > hlcB ? 'from-a' : 'from-b';
      await waitFor(
        () =>
          [a, b, c].every((h) => h.store.get(key('web'))?.spec?.templateRef !== undefined) &&
          allAgree([a, b, c]),
        'one version everywhere',
      );
      for (const h of [a, b, c]) {
        expect(h.store.get(key('web'))!.spec).toEqual({ templateRef: { name: winner } });
        expect(h.store.get(key('web'))!.metadata.generation).toBe(2);
      }
    });

    it('propagates a delete as a tombstone, and a later re-create resurrects the object', async () => {
      const [a, b, c] = await start(3);
      a.store.create(instance('web'));
      await waitFor(() => !!c.store.get(key('web')), 'web on C');
      c.store.delete(key('web'));
      await waitFor(() => !a.store.get(key('web')) && !b.store.get(key('web')), 'web gone on A and B');
      expect(a.store.replicationRow(key('web'))!.deleted).toBe(true);
      expect(a.store.list('ServiceInstance').items).toEqual([]);
      const again = b.store.create(instance('web', 'second'));
      await waitFor(() => a.store.get(key('web'))?.metadata.uid === again.metadata.uid, 'web back on A');
      await waitFor(() => allAgree([a, b, c]), 'identical stores');
      expect(c.store.get(key('web'))!.spec).toEqual({ templateRef: { name: 'second' } });
    });

    it('brings a host that was down up to date by anti-entropy when it comes back', async () => {
      const [a, b, c] = await start(3);
      a.store.create(instance('keep'));
      a.store.create(instance('gone'));
      await waitFor(() => allAgree([a, b, c]) && !!c.store.get(key('gone')), 'first objects everywhere');
      await cluster!.down(2);
      a.store.create(instance('new'));
      b.store.update({ ...b.store.get(key('keep'))!, spec: { templateRef: { name: 'v2' } } });
      a.store.delete(key('gone'));
      await waitFor(() => allAgree([a, b]) && !!b.store.get(key('new')), 'A and B agree');
      expect(c.store.get(key('new'))).toBeUndefined();
      await cluster!.up(2);
      await waitFor(() => allAgree([a, b, c]), 'C caught up');
      expect(c.store.get(key('new'))).toBeDefined();
      expect(c.store.get(key('gone'))).toBeUndefined();
      expect(c.store.get(key('keep'))!.spec).toEqual({ templateRef: { name: 'v2' } });
    });

    it('heals a partition A | B,C with writes on both sides to identical contents', async () => {
      const [a, b, c] = await start(3);
      for (const n of ['s', 'd', 'e']) a.store.create(instance(n));
      await waitFor(() => allAgree([a, b, c]) && !!c.store.get(key('e')), 'seed objects everywhere');
      await cluster!.isolate(0);
      a.store.create(instance('only-a'));
      a.store.update({ ...a.store.get(key('s'))!, spec: { templateRef: { name: 'a-side' } } });
      a.store.delete(key('d'));
      b.store.create(instance('only-b'));
      b.store.update({ ...b.store.get(key('s'))!, spec: { templateRef: { name: 'b-side' } } });
      c.store.update({ ...c.store.get(key('e'))!, status: { phase: 'Running' } }, { subresource: 'status' });
      b.store.delete(key('e'));
      await waitFor(() => allAgree([b, c]) && !!c.store.get(key('only-b')), 'B and C agree');
      expect(b.store.get(key('only-a'))).toBeUndefined();
      expect(a.store.get(key('only-b'))).toBeUndefined();
      await cluster!.rejoin(0);
      await waitFor(() => allAgree([a, b, c]), 'identical after healing', 15_000);
      const names = a.store.list('ServiceInstance').items.map((o) => o.metadata.name);
      expect(names).toEqual(['only-a', 'only-b', 's']);
      // s: the later of the two spec writes wins on every host.
      expect(['a-side', 'b-side']).toContain(
        (a.store.get(key('s'))!.spec as { templateRef: { name: string } }).templateRef.name,
      );
    });

    it('keeps a spec write on A and a concurrent status write on B', async () => {
      const [a, b, c] = await start(3);
      a.store.create(instance('web'));
      await waitFor(() => !!b.store.get(key('web')) && !!c.store.get(key('web')), 'web on B and C');
      a.store.update({ ...a.store.get(key('web'))!, spec: { templateRef: { name: 'v2' } } });
      b.store.update(
        { ...b.store.get(key('web'))!, status: { phase: 'Running', observedGeneration: 1 } },
        {
          subresource: 'status',
        },
      );
      await waitFor(
        () => allAgree([a, b, c]) && c.store.get(key('web'))?.status !== undefined,
        'merged everywhere',
      );
      for (const h of [a, b, c]) {
        const got = h.store.get(key('web'))!;
        expect(got.spec).toEqual({ templateRef: { name: 'v2' } });
        expect(got.status).toEqual({ phase: 'Running', observedGeneration: 1 });
        expect(got.metadata.generation).toBe(2);
      }
    });

    it('drops invalid rows from a peer and applies the valid ones of the same batch', async () => {
      const hosts = await start(2, { syncIntervalMs: 600_000, maxRowBytes: 64 * 1024 });
      const [a, b] = hosts;
      const rogue = await cluster!.rogue();
      const base = (name: string, object: XObject = instance(name)) => ({
        kind: 'ServiceInstance',
        namespace: 'default',
        name,
        deleted: false,
        hlc: `${String(Date.now()).padStart(15, '0')}.0000000000.rogue`,
        writer: 'rogue',
        statusHlc: '',
        statusWriter: '',
        object: { ...object, metadata: { ...object.metadata, uid: 'u-1', generation: 1 } },
      });
      const rows = [
        base('good'),
        base('bad-schema', {
          ...instance('bad-schema'),
          spec: { templateRef: { name: 42 } },
        } as unknown as XObject),
        base('bad-status', { ...instance('bad-status'), status: { phase: 7 } } as unknown as XObject),
        { ...base('bad-envelope'), hlc: undefined },
        { ...base('bad-clock'), hlc: 'yesterday' },
        { ...base('bad-writer'), writer: 'someone-else' },
        { ...base('bad-key'), name: 'other' },
        base('too-big', {
          ...instance('too-big'),
          metadata: { name: 'too-big', namespace: 'default', annotations: { x: 'y'.repeat(100_000) } },
        }),
        'not a row',
      ];
      const reply = (await rogue.request(a.id, { type: 'push', rows })) as {
        applied: number;
        rejected: number;
      };
      expect(reply).toEqual({ applied: 1, rejected: rows.length - 1 });
      expect(a.store.get(key('good'))!.metadata.uid).toBe('u-1');
      for (const n of [
        'bad-schema',
        'bad-status',
        'bad-envelope',
        'bad-clock',
        'bad-writer',
        'bad-key',
        'too-big',
        'other',
      ]) {
        expect(a.store.replicationRow(key(n)), n).toBeUndefined();
      }
      expect(a.replicator.rejections.map((r) => r.reason).join('\n')).toMatch(/spec\.templateRef\.name/);
      // A passes on nothing it received (each host pushes its own writes): the valid row reaches B by
      // anti-entropy; the invalid ones never do.
      expect(b.store.get(key('good'))).toBeUndefined();
      await a.replicator.syncWith(b.id);
      await waitFor(() => !!b.store.get(key('good')), 'good on B');
      expect(dump(b.store)).toBe(dump(a.store));
      await expect(rogue.request(a.id, { type: 'nonsense' })).rejects.toThrow(/unknown request type/);
    });

    it('still answers a stale resourceVersion on one host with 409 Conflict', async () => {
      const [a, b] = await start(2);
      a.store.create(instance('web'));
      await waitFor(() => !!b.store.get(key('web')), 'web on B');
      const stale = b.store.get(key('web'))!;
      a.store.update({ ...a.store.get(key('web'))!, spec: { templateRef: { name: 'v2' } } });
      await waitFor(() => b.store.get(key('web'))!.metadata.generation === 2, 'v2 on B');
      expect(() => b.store.update({ ...stale, spec: { templateRef: { name: 'lost' } } })).toThrow(
        ConflictError,
      );
      const fresh = b.store.get(key('web'))!;
      expect(Number(fresh.metadata.resourceVersion)).toBeGreaterThan(Number(stale.metadata.resourceVersion));
      expect(b.store.update({ ...fresh, spec: { templateRef: { name: 'v3' } } }).metadata.generation).toBe(3);
    });
  });
}
