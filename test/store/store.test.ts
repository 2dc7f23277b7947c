// SqliteStore: the Store contract, plus what only a durable store has — data, revision, writer
// and clock kept across reopening, tombstones, changesSince and tombstone purge.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { XObject } from '../../src/model/object.ts';
import { ExpiredError } from '../../src/store/errors.ts';
import { hlcCompare, parseHlc } from '../../src/store/hlc.ts';
import { type OpenStoreInit, openStore, type SqliteStore } from '../../src/store/sqlite-store.ts';
import { captureLog } from '../log-capture.ts';
import { runStoreContract } from './store-contract.ts';

const root = mkdtempSync(join(tmpdir(), 'xenos-store-'));
let n = 0;
const freshPath = () => join(root, `s${n++}`, 'store.db');
afterAll(() => rmSync(root, { recursive: true, force: true }));

runStoreContract('SqliteStore', ({ namespaced, historySize }) =>
  openStore({ path: freshPath(), namespaced, historySize, writer: 'host-a' }),
);

function instance(name: string, spec: Record<string, unknown> = {}): XObject {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name, namespace: 'default' },
    spec,
  };
}
const key = (name: string) => ({ kind: 'ServiceInstance', namespace: 'default', name });

describe('SqliteStore on disk', () => {
  const open: SqliteStore[] = [];
  const start = (init: Partial<OpenStoreInit> & { path: string }) => {
    const s = openStore({ namespaced: (k) => k !== 'Host', ...init });
    open.push(s);
    return s;
  };
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
  });

  it('keeps objects, revision, writer id and clock across a reopen, even if the wall clock went back', () => {
    const path = freshPath();
    const a = start({ path, wallClock: () => 50_000 });
    const web = a.create(instance('web', { n: 1 }));
    a.delete(key('web'));
    a.create(instance('db'));
    const rev = a.revision();
    const lastHlc = [...a.changesSince(0)].at(-1)!.hlc;
    const writer = a.writer;
    a.close();

    const b = start({ path, wallClock: () => 10_000 });
    expect(b.revision()).toBe(rev);
    expect(b.writer).toBe(writer);
    expect(b.get(key('web'))).toBeUndefined();
    expect(b.get(key('db'))!.metadata.resourceVersion).toBe(rev);
    const next = b.create(instance('web', { n: 2 }));
    expect(Number(next.metadata.resourceVersion)).toBe(Number(rev) + 1);
    expect(next.metadata.uid).not.toBe(web.metadata.uid);
    const newest = [...b.changesSince(rev)];
    expect(newest).toHaveLength(1);
    expect(hlcCompare(newest[0].hlc, lastHlc)).toBeGreaterThan(0);
    expect(parseHlc(newest[0].hlc).writer).toBe(writer);
  });

  it('group commit: writes that arrive together share one transaction, and are there after a reopen', async () => {
    const path = freshPath();
    const a = start({ path });
    const before = a.groupCommitStats().batches;
    const writes = Array.from({ length: 50 }, (_, i) => a.groupCommit(() => a.create(instance(`w${i}`))));
    await Promise.all(writes);
    expect(a.groupCommitStats().batches - before).toBe(1);
    expect(a.groupCommitStats().largest).toBe(50);
    // A write queued in a later turn goes to the next transaction.
    await a.groupCommit(() => a.create(instance('later')));
    expect(a.groupCommitStats().batches - before).toBe(2);
    // close() commits what is still queued; writes after it are refused.
    const queued = a.groupCommit(() => a.create(instance('at-close')));
    a.close();
    await expect(queued).resolves.toMatchObject({ metadata: { name: 'at-close' } });
    await expect(a.groupCommit(() => a.create(instance('too-late')))).rejects.toThrow(/closed/);
    const b = start({ path });
    expect(b.list('ServiceInstance').items).toHaveLength(52);
  });

  it('puts the database in WAL mode', () => {
    const path = freshPath();
    start({ path }).create(instance('web'));
    const db = new DatabaseSync(path);
    try {
      expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    } finally {
      db.close();
    }
  });

  it('keeps deletions as tombstones, invisible to get and list, until purged by age', () => {
    let wall = 1_000_000;
    const s = start({ path: freshPath(), writer: 'host-a', wallClock: () => wall });
    s.create(instance('a'));
    s.create(instance('b'));
    s.delete(key('a'));
    const rev = s.revision();
    const rows = [...s.changesSince(0)];
    expect(rows.map((r) => [r.name, r.deleted, r.writer])).toEqual([
      ['b', false, 'host-a'],
      ['a', true, 'host-a'],
    ]);
    expect(rows[1].object.metadata.name).toBe('a');
    expect(rows[1].revision).toBe(Number(rev));
    expect(s.list('ServiceInstance').items.map((o) => o.metadata.name)).toEqual(['b']);

    wall += 10_000;
    expect(s.purgeTombstones(60_000, wall)).toBe(0);
    expect(s.purgeTombstones(60_000, wall + 60_000)).toBe(1);
    expect([...s.changesSince(0)].map((r) => r.name)).toEqual(['b']);
    expect(s.revision()).toBe(rev);
    // A purge never lowers the revision: the next write goes on from it.
    expect(Number(s.create(instance('a')).metadata.resourceVersion)).toBe(Number(rev) + 1);
  });

  it('walks changesSince in revision order across batches, latest version per object', () => {
    const s = start({ path: freshPath() });
    for (let i = 0; i < 12; i++) s.create(instance(`o${i}`));
    const o3 = s.get(key('o3'))!;
    s.update({ ...o3, spec: { n: 1 } });
    const seen = [...s.changesSince(4, 5)];
    expect(seen.map((r) => r.name)).toEqual(['o4', 'o5', 'o6', 'o7', 'o8', 'o9', 'o10', 'o11', 'o3']);
    expect(seen.map((r) => r.revision)).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(seen.at(-1)!.object.spec).toEqual({ n: 1 });
  });

  it('resumes a watch across a reopen from the table, and answers 410 once a deletion was purged', () => {
    const path = freshPath();
    const wall = Date.now();
    const a = start({ path });
    a.create(instance('a'));
    const rv = a.revision();
    a.create(instance('b'));
    a.create(instance('gone'));
    a.delete(key('gone'));
    a.close();
    const b = start({ path });
    const events: string[] = [];
    const stop = b.watch('ServiceInstance', { resourceVersion: rv }, (e) =>
      events.push(`${e.type} ${e.object.metadata.name}`),
    );
    try {
      b.create(instance('c'));
    } finally {
      stop();
    }
    expect(events).toEqual(['MODIFIED b', 'DELETED gone', 'ADDED c']);
    // The tombstone purged: from before its deletion the table cannot tell, so the watch is Expired.
    expect(b.purgeTombstones(0, wall + 60_000)).toBe(1);
    expect(() => b.watch('ServiceInstance', { resourceVersion: rv }, () => {})).toThrow(ExpiredError);
    // Other kinds were not compacted by it.
    expect(() => b.watch('ServiceTemplate', { resourceVersion: rv }, () => {})).not.toThrow();
    // From after the purged deletion: fine.
    expect(() => b.watch('ServiceInstance', { resourceVersion: b.revision() }, () => {})).not.toThrow();
  });

  it('logs a listener that throws through the given logger, naming the object', () => {
    const { log, lines } = captureLog();
    const s = start({ path: freshPath(), log });
    s.watch('ServiceInstance', {}, () => {
      throw new Error('bug');
    });
    s.create(instance('web'));
    s.create(instance('db'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', kind: 'ServiceInstance', err: { message: 'bug' } });
    expect(lines[0].msg).toContain('ADDED default/web');
  });

  it('refuses a database written by a newer schema, saying what to do', () => {
    const path = freshPath();
    start({ path }).close();
    const db = new DatabaseSync(path);
    db.exec('PRAGMA user_version = 99');
    db.close();
    expect(() => start({ path })).toThrow(/schema version 99, newer than this xenos understands/);
  });
});
