// State replication over the in-memory transport: the replication contract, plus the store's merge
// rules (applyReplicated), the schema migration, tombstone retention and the cost of a sync.

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.ts';
import { BadRequestError, type RowRefusedError } from '../../src/store/errors.ts';
import { formatHlc, hlcCompare, parseHlc } from '../../src/store/hlc.ts';
import { MemoryNetwork } from '../../src/store/replication/memory-transport.ts';
import { Replicator } from '../../src/store/replication/replicator.ts';
import type { SyncTransport } from '../../src/store/replication/transport.ts';
import { openStore, type ReplicatedRow, type SqliteStore } from '../../src/store/sqlite-store.ts';
import type { WatchEvent } from '../../src/store/store.ts';
import { memoryCluster } from './memory-cluster.ts';
import {
  type ClusterHarness,
  crdValidate,
  dump,
  instance,
  key,
  namespaced,
  runReplicationContract,
  TEST_INIT,
  waitFor,
} from './replication-contract.ts';

const quiet = silentLogger.root;

runReplicationContract('in-memory transport', memoryCluster);

const ms = (t: number, writer: string, logical = 0) => formatHlc({ physical: t, logical, writer });

function row(
  name: string,
  over: Partial<ReplicatedRow> & { spec?: string; status?: string } = {},
): ReplicatedRow {
  const { spec, status, ...rest } = over;
  const obj = instance(name, spec ?? 'web');
  return {
    kind: 'ServiceInstance',
    namespace: 'default',
    name,
    deleted: false,
    hlc: ms(1_000, 'b'),
    writer: 'b',
    statusHlc: ms(1_000, 'b'),
    statusWriter: 'b',
    proof: '',
    statusProof: '',
    object: {
      ...obj,
      metadata: { ...obj.metadata, uid: 'uid-b', generation: 1 },
      ...(status ? { status: { phase: status } } : {}),
    },
    ...rest,
  };
}

describe('SqliteStore.applyReplicated', () => {
  const stores: SqliteStore[] = [];
  const fresh = (wall = 1_000) => {
    const s = openStore({ path: ':memory:', namespaced, writer: 'a', wallClock: () => wall });
    stores.push(s);
    return s;
  };
  afterEach(() => {
    for (const s of stores.splice(0)) s.close();
  });

  it('adds, modifies and deletes with watch events and local revisions, keeping uid and generation', () => {
    const s = fresh();
    const events: Array<[string, string | undefined, string | undefined]> = [];
    s.watch('ServiceInstance', {}, (e: WatchEvent) =>
      events.push([e.type, e.object.metadata.resourceVersion, (e.object.spec as any)?.templateRef?.name]),
    );
    expect(s.applyReplicated(row('web'))).toEqual({ changed: true, localNewer: false, event: 'ADDED' });
    const got = s.get(key('web'))!;
    expect(got.metadata.uid).toBe('uid-b');
    expect(got.metadata.resourceVersion).toBe('1');
    const v2 = row('web', { hlc: ms(2_000, 'c'), writer: 'c', spec: 'v2' });
    v2.object.metadata.generation = 2;
    expect(s.applyReplicated(v2).event).toBe('MODIFIED');
    expect(s.get(key('web'))!.metadata.generation).toBe(2);
    expect(s.applyReplicated(row('web', { hlc: ms(3_000, 'b'), deleted: true })).event).toBe('DELETED');
    expect(s.get(key('web'))).toBeUndefined();
    expect(events).toEqual([
      ['ADDED', '1', 'web'],
      ['MODIFIED', '2', 'v2'],
      ['DELETED', '3', 'web'],
    ]);
    expect(s.revision()).toBe('3');
  });

  it('ignores an older or equal version and reports that ours is newer', () => {
    const s = fresh();
    s.applyReplicated(row('web', { hlc: ms(5_000, 'b'), spec: 'new' }));
    const rev = s.revision();
    expect(
      s.applyReplicated(
        row('web', { hlc: ms(4_000, 'z'), writer: 'z', statusHlc: ms(900, 'b'), spec: 'old' }),
      ),
    ).toEqual({
      changed: false,
      localNewer: true,
    });
    expect(s.applyReplicated(row('web', { hlc: ms(5_000, 'b'), spec: 'new' })).changed).toBe(false);
    expect(s.get(key('web'))!.spec).toEqual({ templateRef: { name: 'new' } });
    expect(s.revision()).toBe(rev);
  });

  it('breaks a tie in time by writer, the same way whichever arrives first', () => {
    const one = fresh();
    const two = fresh();
    const x = row('web', { hlc: ms(5_000, 'b'), writer: 'b', spec: 'from-b' });
    const y = row('web', { hlc: ms(5_000, 'c'), writer: 'c', spec: 'from-c' });
    one.applyReplicated(x);
    one.applyReplicated(y);
    two.applyReplicated(y);
    two.applyReplicated(x);
    expect(one.get(key('web'))!.spec).toEqual({ templateRef: { name: 'from-c' } });
    expect(dump(one)).toBe(dump(two));
  });

  it('merges the main part and the status part independently', () => {
    const s = fresh();
    s.applyReplicated(row('web', { hlc: ms(1_000, 'b'), statusHlc: ms(1_000, 'b') }));
    // A newer status from the owner, with an old spec: only the status is taken.
    s.applyReplicated(
      row('web', { hlc: ms(1_000, 'b'), statusHlc: ms(3_000, 'c'), statusWriter: 'c', status: 'Running' }),
    );
    // A newer spec with no status (written before the status): only the spec is taken.
    s.applyReplicated(
      row('web', { hlc: ms(2_000, 'd'), writer: 'd', statusHlc: ms(1_000, 'b'), spec: 'v2' }),
    );
    const got = s.get(key('web'))!;
    expect(got.spec).toEqual({ templateRef: { name: 'v2' } });
    expect(got.status).toEqual({ phase: 'Running' });
    const r = s.replicationRow(key('web'))!;
    expect([r.hlc, r.statusHlc]).toEqual([ms(2_000, 'd'), ms(3_000, 'c')]);
  });

  it('resurrects a deleted object when a re-create with a later clock arrives', () => {
    const s = fresh();
    s.create(instance('web'));
    s.delete(key('web'));
    expect(s.applyReplicated(row('web', { hlc: ms(9_000, 'b'), spec: 'again' })).event).toBe('ADDED');
    expect(s.get(key('web'))!.spec).toEqual({ templateRef: { name: 'again' } });
  });

  it('versions local writes per part: status writes move only the status version', () => {
    const s = fresh();
    const created = s.create(instance('web'));
    const r1 = s.replicationRow(key('web'))!;
    expect(r1.statusHlc).toBe(r1.hlc);
    s.update({ ...created, status: { phase: 'Running' } }, { subresource: 'status' });
    const r2 = s.replicationRow(key('web'))!;
    expect(r2.hlc).toBe(r1.hlc);
    expect(hlcCompare(r2.statusHlc, r1.statusHlc)).toBeGreaterThan(0);
    s.update({ ...s.get(key('web'))!, spec: { templateRef: { name: 'v2' } } });
    const r3 = s.replicationRow(key('web'))!;
    expect(r3.statusHlc).toBe(r2.statusHlc);
    expect(hlcCompare(r3.hlc, r2.statusHlc)).toBeGreaterThan(0);
  });

  it('moves the local clock past what it received, so the next local write wins', () => {
    const s = fresh(1_000);
    s.applyReplicated(row('web', { hlc: ms(30_000, 'b') }));
    s.update({ ...s.get(key('web'))!, spec: { templateRef: { name: 'mine' } } });
    expect(hlcCompare(s.replicationRow(key('web'))!.hlc, ms(30_000, 'b'))).toBeGreaterThan(0);
  });

  it('refuses a row far ahead of this clock, or one that does not describe itself, storing nothing', () => {
    const s = fresh(1_000);
    expect(() => s.applyReplicated(row('web', { hlc: ms(1_000_000, 'b') }))).toThrow(
      expect.objectContaining({ name: 'RowRefusedError', reason: 'clock_skew' }),
    );
    expect(() => s.applyReplicated(row('web', { name: 'other' }))).toThrow(BadRequestError);
    expect(() => s.applyReplicated(row('web', { writer: 'x' }))).toThrow(/names writer/);
    expect(s.replicationRow(key('web'))).toBeUndefined();
    expect(s.revision()).toBe('0');
  });

  it('refuses a hostile clock (huge counter, far future) without moving its own: local writes go on at wall-clock time', () => {
    const s = fresh(1_000);
    s.create(instance('mine'));
    const before = s.replicationRow(key('mine'))!.hlc;
    const hostile = [
      row('x', { hlc: ms(1_000 + 59_000, 'b', 9_999_999_998) }), // within the skew, counter at the top
      row('y', { hlc: ms(1_000 + 3_600_000, 'b') }), // an hour ahead
      row('z', { statusHlc: ms(1_000, 'b', 9_999_999_999) }), // a good main part, a hostile status
    ];
    const outcomes = s.applyReplicatedBatch(hostile);
    expect(outcomes.slice(0, 2).map((o) => !o.ok && (o.error as RowRefusedError).reason)).toEqual([
      'clock_skew',
      'clock_skew',
    ]);
    const z = outcomes[2];
    expect(z.ok && z.refused?.reason).toBe('clock_skew');
    expect(z.ok && z.refused?.part).toBe('status');
    expect(s.get(key('z'))!.status).toBeUndefined(); // its main part was taken, not its status
    // 1000 local writes right after: none refused, each stamped at the wall clock with a small counter.
    for (let i = 0; i < 1000; i++) {
      s.update({
        ...s.get(key('mine'))!,
        metadata: { ...s.get(key('mine'))!.metadata, labels: { i: String(i) } },
      });
    }
    const after = parseHlc(s.replicationRow(key('mine'))!.hlc);
    expect(after.physical).toBe(1_000);
    expect(after.logical).toBe(parseHlc(before).logical + 1000 + 1); // +1: the one main part taken (z)
  });

  it('applies a batch row by row: a bad row is dropped alone, revisions and events follow the batch order after the commit', () => {
    const s = fresh(1_000);
    const seen: Array<[string, string, string | undefined, boolean]> = [];
    s.watch('ServiceInstance', {}, (e: WatchEvent) =>
      // Whether the last row of the batch is already readable: events come after the one commit.
      seen.push([e.type, e.object.metadata.name, e.object.metadata.resourceVersion, !!s.get(key('c'))]),
    );
    const a2 = row('a', { hlc: ms(2_000, 'c'), writer: 'c', spec: 'v2' });
    const outcomes = s.applyReplicatedBatch([
      row('a'),
      row('b', { hlc: ms(1_000_000, 'b') }),
      row('x', { name: 'other' }),
      row('c'),
      a2,
      row('c'),
    ]);
    expect(outcomes.map((o) => (o.ok ? (o.result.event ?? String(o.result.changed)) : o.error.name))).toEqual(
      ['ADDED', 'RowRefusedError', 'BadRequestError', 'ADDED', 'MODIFIED', 'false'],
    );
    expect(seen).toEqual([
      ['ADDED', 'a', '1', true],
      ['ADDED', 'c', '2', true],
      ['MODIFIED', 'a', '3', true],
    ]);
    expect(s.replicationRow(key('b'))).toBeUndefined();
    expect(s.replicationRow(key('x'))).toBeUndefined();
    expect(s.get(key('a'))!.spec).toEqual(instance('a', 'v2').spec);
    expect(s.revision()).toBe('3');
  });

  it('commits a batch once (a fraction of the WAL that one commit per row writes) and keeps the revision counter on reopen', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenos-batch-'));
    try {
      const rows = Array.from({ length: 50 }, (_, i) => row(`r-${i}`));
      const walBytes = (path: string) => statSync(`${path}-wal`).size;
      const one = openStore({ path: join(dir, 'one.db'), namespaced, writer: 'a' });
      const batch = openStore({ path: join(dir, 'batch.db'), namespaced, writer: 'a' });
      stores.push(one, batch);
      const before = [walBytes(one.path), walBytes(batch.path)];
      for (const r of rows) one.applyReplicated(r);
      expect(batch.applyReplicatedBatch(rows).every((o) => o.ok && o.result.event === 'ADDED')).toBe(true);
      const perRow = walBytes(one.path) - before[0];
      const batched = walBytes(batch.path) - before[1];
      expect(batched * 5).toBeLessThan(perRow);
      // r-0 again with only its version moved: the row keeps revision 1, the counter stays at 50.
      expect(batch.applyReplicatedBatch([row('r-0', { hlc: ms(2_000, 'b') })])[0]).toMatchObject({
        ok: true,
      });
      batch.close();
      const reopened = openStore({ path: join(dir, 'batch.db'), namespaced, writer: 'a' });
      stores.push(reopened);
      expect(reopened.revision()).toBe('50');
      expect(reopened.get(key('r-0'))!.metadata.resourceVersion).toBe('1');
    } finally {
      for (const s of stores.splice(0)) s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('store schema migration', () => {
  const root = mkdtempSync(join(tmpdir(), 'xenos-repl-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('upgrades a version-1 database: each row gets a status version equal to its version', () => {
    const path = join(root, 'v1.db');
    const db = new DatabaseSync(path);
    db.exec(`CREATE TABLE objects (kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
      revision INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, hlc TEXT NOT NULL, writer TEXT NOT NULL,
      body TEXT NOT NULL, PRIMARY KEY (kind, namespace, name)) WITHOUT ROWID;
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      PRAGMA user_version = 1;`);
    const body = JSON.stringify({ ...instance('web'), status: { phase: 'Running' } });
    db.prepare('INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
      'ServiceInstance',
      'default',
      'web',
      1,
      0,
      ms(5_000, 'old'),
      'old',
      body,
    );
    db.prepare("INSERT INTO meta VALUES ('revision', '1')").run();
    db.close();
    const s = openStore({ path, namespaced, writer: 'a' });
    try {
      const r = s.replicationRow(key('web'))!;
      expect([r.hlc, r.writer, r.statusHlc, r.statusWriter]).toEqual([
        ms(5_000, 'old'),
        'old',
        ms(5_000, 'old'),
        'old',
      ]);
      expect(s.get(key('web'))!.status).toEqual({ phase: 'Running' });
      s.update({ ...s.get(key('web'))!, status: { phase: 'Failed' } }, { subresource: 'status' });
      expect(s.replicationRow(key('web'))!.hlc).toBe(ms(5_000, 'old'));
    } finally {
      s.close();
    }
    const check = new DatabaseSync(path);
    expect(check.prepare('PRAGMA user_version').get()).toEqual({ user_version: 3 });
    check.close();
  });
});

describe('replication over the in-memory transport', () => {
  let cluster: ClusterHarness | undefined;
  afterEach(async () => {
    await cluster?.cleanup();
    cluster = undefined;
  });

  it('does not ship, accept or resurrect tombstones older than the retention', async () => {
    const network = new MemoryNetwork();
    cluster = await memoryCluster(
      2,
      { ...TEST_INIT, tombstoneRetentionMs: 60_000, syncIntervalMs: 600_000 },
      network,
    );
    const [a, b] = cluster.hosts;
    const old = row('web', { hlc: ms(Date.now() - 120_000, 'b'), deleted: true });
    const fresh = row('other', { hlc: ms(Date.now() - 1_000, 'b'), deleted: true });
    const rogue = await cluster.rogue();
    expect(await rogue.request(a.id, { type: 'push', rows: [old, fresh] })).toEqual({
      applied: 1,
      rejected: 0,
    });
    expect(a.store.replicationRow(key('web'))).toBeUndefined();
    expect(a.store.replicationRow(key('other'))!.deleted).toBe(true);
    // A tombstone that aged past the retention is purged and not brought back by a sync.
    b.store.applyReplicated(old);
    expect(a.replicator.collectGarbage() + b.replicator.collectGarbage()).toBe(1);
    b.store.applyReplicated(old);
    await a.replicator.syncWith(b.id);
    expect(a.store.replicationRow(key('web'))).toBeUndefined();
    await waitFor(() => !!b.store.replicationRow(key('other')), 'fresh tombstone on B');
  });

  it('syncs thousands of objects that agree in one small round trip', async () => {
    const network = new MemoryNetwork();
    cluster = await memoryCluster(2, { ...TEST_INIT, syncIntervalMs: 600_000 }, network);
    const [a, b] = cluster.hosts;
    for (let i = 0; i < 2000; i++) a.store.create(instance(`o${i}`));
    await waitFor(() => dump(a.store) === dump(b.store), '2000 objects on B', 20_000);
    const counted = countRequests(network.endpointOf(a.id)!);
    await a.replicator.syncWith(b.id);
    expect(counted.requests).toEqual([expect.objectContaining({ type: 'digest' })]);
    expect(counted.bytes).toBeLessThan(4096);
    // One differing object: one more exchange, carrying only that row.
    b.store.update({ ...b.store.get(key('o7'))!, spec: { templateRef: { name: 'x' } } });
    counted.requests.length = 0;
    network.isolate(b.id); // no push: only anti-entropy can carry it
    network.heal();
    await a.replicator.syncWith(b.id);
    expect(a.store.get(key('o7'))!.spec).toEqual({ templateRef: { name: 'x' } });
  });
});

/** Wraps a transport's request to record what it sends. */
function countRequests(t: SyncTransport): { requests: any[]; bytes: number } {
  const out = { requests: [] as any[], bytes: 0 };
  const original = t.request.bind(t);
  t.request = (peer, message, opts) => {
    out.requests.push(message);
    out.bytes += JSON.stringify(message).length;
    return original(peer, message, opts);
  };
  return out;
}

describe('push path under a slow peer', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** Three hosts on one memory network; B holds every push it receives until `release()`, and
   *  records each store transaction that applies received rows (its row count). */
  async function slowB() {
    const network = new MemoryNetwork();
    const { promise: gate, resolve: release } = Promise.withResolvers<void>();
    const held = { pushes: 0, batches: [] as number[] };
    const hosts = ['host-a', 'host-b', 'host-c'].map((name) => {
      const store = openStore({ path: ':memory:', namespaced, writer: name });
      const transport = network.endpoint(name);
      if (name === 'host-b') {
        const onRequest = transport.onRequest.bind(transport);
        transport.onRequest = (handler) =>
          onRequest(async (from, message, opts) => {
            if ((message as { type: string }).type === 'push') {
              held.pushes++;
              await gate;
            }
            return handler(from, message, opts);
          });
        const apply = store.applyReplicatedBatch.bind(store);
        store.applyReplicatedBatch = (rows) => {
          held.batches.push(rows.length);
          return apply(rows);
        };
      }
      const replicator = new Replicator(
        { store, transport, validate: crdValidate, log: quiet },
        { ...TEST_INIT, syncIntervalMs: 600_000 },
      );
      cleanups.push(() => store.close());
      cleanups.push(() => replicator.stop());
      return { name, store, replicator };
    });
    cleanups.push(release); // never leave a held push behind
    await Promise.all(hosts.map((h) => h.replicator.start()));
    await waitFor(() => hosts.every((h) => h.replicator.idle), 'start-up syncs done');
    held.batches.length = 0;
    return { hosts, held, release };
  }

  it('reaches the other peers while one is slow, then sends the slow one what queued as one push, applied in one transaction', async () => {
    const { hosts, held, release } = await slowB();
    const [a, b, c] = hosts;
    a.store.create(instance('w0'));
    await waitFor(() => !!c.store.get(key('w0')) && held.pushes === 1, 'w0 on C while B holds its push');
    for (let i = 1; i <= 4; i++) {
      // Each write its own push: C gets each at once, B's wait in one queue.
      a.store.create(instance(`w${i}`));
      await waitFor(() => !!c.store.get(key(`w${i}`)), `w${i} on C while B holds its push`);
    }
    expect(b.store.get(key('w0'))).toBeUndefined();
    release();
    await waitFor(() => [0, 1, 2, 3, 4].every((i) => !!b.store.get(key(`w${i}`))), 'w0..w4 on B');
    await waitFor(() => hosts.every((h) => h.replicator.idle), 'every push sent');
    expect(held.pushes).toBe(2);
    expect(held.batches).toEqual([1, 4]);
  });

  it('applies pushes from several peers that arrive together in one transaction', async () => {
    const { hosts, held, release } = await slowB();
    const [a, b, c] = hosts;
    a.store.create(instance('from-a'));
    c.store.create(instance('from-c'));
    await waitFor(() => held.pushes === 2, 'both pushes held at B');
    release();
    await waitFor(() => !!b.store.get(key('from-a')) && !!b.store.get(key('from-c')), 'both on B');
    expect(held.batches).toEqual([2]);
  });
});
