// Rows are bound to their writers: each part version is signed by the host that wrote it, every host checks
// the signature, the writer's key and whether that writer may write it, whoever relayed the row. A key holder
// can write any spec, but not another host's Host status or the status of an instance bound elsewhere — except
// the verdict that a silent host is NotReady, which changes nothing else of the owner's signed status.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { XObject } from '../../src/model/object.ts';
import { ForbiddenError, HostNameTakenError, type RowRefusedError } from '../../src/store/errors.ts';
import { formatHlc, parseHlc } from '../../src/store/hlc.ts';
import { hashOf, type StatusBase, statusHalves } from '../../src/store/row-proof.ts';
import { openStore, type ReplicatedRow, type SqliteStore } from '../../src/store/sqlite-store.ts';
import { authorityOf, type Identity, namespaced, newIdentity, signedStore } from './signed-store.ts';

const API = 'xenos.io/v1alpha1';
const hostKey = (name: string) => ({ kind: 'Host', namespace: '', name });
const siKey = (name: string) => ({ kind: 'ServiceInstance', namespace: 'default', name });

function hostObject(name: string): XObject {
  return { apiVersion: API, kind: 'Host', metadata: { name }, spec: {} };
}

function instance(name: string, host?: string): XObject {
  return {
    apiVersion: API,
    kind: 'ServiceInstance',
    metadata: { name, namespace: 'default' },
    spec: { templateRef: { name: 'web' }, ...(host ? { host } : {}) },
  };
}

function ownStatus(store: SqliteStore, name: string, peerId: string, extra: Record<string, unknown> = {}) {
  const h = store.get(hostKey(name)) ?? store.create(hostObject(name));
  return store.update(
    {
      ...h,
      status: {
        phase: 'Ready',
        peerId,
        addresses: { api: `https://${name}.example:7443` },
        conditions: [{ type: 'Ready', status: 'True', reason: 'HostRunning' }],
        ...extra,
      } as any,
    },
    { subresource: 'status' },
  );
}

/** Ships every row of `from` to `to` as a peer would (the wire form: a JSON round trip). */
function sync(from: SqliteStore, to: SqliteStore): ReturnType<SqliteStore['applyReplicatedBatch']> {
  const rows = [...from.replicationVersions()].map((v) =>
    JSON.parse(JSON.stringify(from.replicationRow(v)!)),
  );
  return to.applyReplicatedBatch(rows);
}

function reasonOf(outcome: ReturnType<SqliteStore['applyReplicatedBatch']>[number]): string | undefined {
  if (!outcome.ok) return (outcome.error as RowRefusedError).reason ?? outcome.error.name;
  return outcome.refused?.reason;
}

describe('rows bound to their writers', () => {
  const stores: SqliteStore[] = [];
  let ids: Record<string, Identity>;
  const open = (name: string, id: Identity) => {
    const s = signedStore(name, id);
    stores.push(s);
    return s;
  };

  afterEach(() => {
    for (const s of stores.splice(0)) s.close();
  });

  async function cluster() {
    ids = { a: await newIdentity(), b: await newIdentity(), m: await newIdentity() };
    const a = open('a', ids.a);
    const b = open('b', ids.b);
    const m = open('m', ids.m); // a key holder that lies
    ownStatus(a, 'a', ids.a.peerId);
    ownStatus(b, 'b', ids.b.peerId);
    ownStatus(m, 'm', ids.m.peerId);
    for (const [x, y] of [
      [a, b],
      [b, a],
      [a, m],
      [m, a],
      [b, m],
      [m, b],
    ])
      sync(x, y);
    return { a, b, m };
  }

  it('takes a row signed by its writer, also relayed by another host, and binds names to keys', async () => {
    const { a, b, m } = await cluster();
    a.create(instance('web', 'a'));
    expect(sync(a, b).every((o) => o.ok && !o.refused)).toBe(true);
    // m gets a's row from b (forwarding): the proof is a's, whoever carries it.
    const c = open('c', await newIdentity());
    expect(sync(b, c).map(reasonOf).filter(Boolean)).toEqual([]);
    expect(c.get(siKey('web'))).toBeDefined();
    expect(c.bindings.peerOf('a')).toBe(ids.a.peerId);
    expect(m.bindings.peerOf('b')).toBe(ids.b.peerId);
  });

  it("refuses another host's Host status, whether signed as that host or as itself", async () => {
    const { a, b, m } = await cluster();
    const genuine = a.replicationRow(hostKey('a'))!;
    // m writes as itself: not the owner of Host a.
    const asItself: ReplicatedRow = {
      ...wire(genuine),
      ...signedStatus(m, ids.m, 'm', hostKey('a'), {
        ...genuine.object.status!,
        addresses: { api: 'https://evil' },
      }),
    };
    // m writes in a's name: a's name is bound to a's key.
    const inAsName: ReplicatedRow = {
      ...wire(genuine),
      ...signedStatus(m, ids.m, 'a', hostKey('a'), {
        ...genuine.object.status!,
        addresses: { api: 'https://evil' },
      }),
    };
    const unsigned = { ...wire(genuine), statusProof: '', statusHlc: nextHlc(genuine.statusHlc, 'a') };
    const out = b.applyReplicatedBatch([asItself, inAsName, unsigned]);
    expect(out.map(reasonOf)).toEqual(['not_permitted', 'writer_mismatch', 'unsigned']);
    expect((b.get(hostKey('a'))!.status as any).addresses.api).toBe('https://a.example:7443');
    // a's genuine row, its status changed on the way to a host that has not seen it: the proof no longer
    // verifies, so only the main part (untouched) is taken.
    const tampered = wire(genuine);
    (tampered.object.status as any).addresses = { api: 'https://evil' };
    const c = open('c', await newIdentity());
    const [t] = c.applyReplicatedBatch([tampered]);
    expect(t.ok && t.refused?.reason).toBe('bad_signature');
    expect(c.get(hostKey('a'))!.status).toBeUndefined();
  });

  it('lets any host write specs but not the status of an instance bound to another host', async () => {
    const { a, b, m } = await cluster();
    a.create(instance('web', 'b'));
    sync(a, b);
    sync(a, m);
    // m may change the spec (users write through any host)…
    m.update({
      ...m.get(siKey('web'))!,
      metadata: { ...m.get(siKey('web'))!.metadata, labels: { by: 'm' } },
    });
    // …but not write the instance's status: refused on m itself first.
    const status: any = {
      phase: 'Running',
      endpoints: [{ name: 'http', address: '203.0.113.9', port: 80, protocol: 'TCP' }],
    };
    expect(() => m.update({ ...m.get(siKey('web'))!, status }, { subresource: 'status' })).toThrow(
      ForbiddenError,
    );
    // Crafted anyway and sent to b: refused there.
    const row = wire(m.replicationRow(siKey('web'))!);
    const forged = { ...row, ...signedStatus(m, ids.m, 'm', siKey('web'), status) };
    const [outcome] = b.applyReplicatedBatch([forged]);
    expect(reasonOf(outcome)).toBe('not_permitted');
    expect(outcome.ok).toBe(true); // the spec change in the same row was taken
    expect(b.get(siKey('web'))!.metadata.labels).toEqual({ by: 'm' });
    expect(b.get(siKey('web'))!.status).toBeUndefined();
    // b, the bound host, writes it; a takes it.
    b.update({ ...b.get(siKey('web'))!, status: { phase: 'Running' } }, { subresource: 'status' });
    expect(sync(b, a).map(reasonOf).filter(Boolean)).toEqual([]);
    expect(a.get(siKey('web'))!.status).toEqual({ phase: 'Running' });
  });

  it('clears the status when an instance is bound to another host, so the old status never stands with the new binding', async () => {
    const { a, b } = await cluster();
    a.create(instance('web', 'b'));
    sync(a, b);
    b.update({ ...b.get(siKey('web'))!, status: { phase: 'Running' } }, { subresource: 'status' });
    sync(b, a);
    const moved = a.update({ ...a.get(siKey('web'))!, spec: { templateRef: { name: 'web' }, host: 'a' } });
    expect(moved.status).toBeUndefined();
    const row = a.replicationRow(siKey('web'))!;
    expect([row.writer, row.statusWriter, row.statusHlc]).toEqual(['a', 'a', row.hlc]);
    expect(sync(a, b).map(reasonOf).filter(Boolean)).toEqual([]);
    expect(b.get(siKey('web'))!.status).toBeUndefined();
    // b, no longer bound, may not write it any more.
    expect(() =>
      b.update({ ...b.get(siKey('web'))!, status: { phase: 'Stopped' } }, { subresource: 'status' }),
    ).toThrow(/written by host a/);
  });

  it("takes a verdict (NotReady, over the owner's signed status) from any host, and nothing more", async () => {
    const { a, b, m } = await cluster();
    const verdict = (status: any) => ({
      ...status,
      phase: 'NotReady',
      conditions: [{ type: 'Ready', status: 'False', reason: 'HostUnreachable', message: 'marked by b' }],
    });
    // b marks a NotReady, as the liveness owner does: only phase and Ready change.
    const h = b.get(hostKey('a'))!;
    b.update({ ...h, status: verdict(h.status) }, { subresource: 'status' });
    const row = b.replicationRow(hostKey('a'))!;
    expect(row.statusWriter).toBe('b');
    expect(row.statusBase?.writer).toBe('a');
    expect(sync(b, m).map(reasonOf).filter(Boolean)).toEqual([]);
    expect((m.get(hostKey('a'))!.status as any).phase).toBe('NotReady');
    // A "verdict" that also moves a's address is no verdict: refused on b itself…
    const h2 = b.get(hostKey('a'))!;
    const moved = { ...verdict(h2.status), addresses: { api: 'https://evil' } };
    expect(() => b.update({ ...h2, status: moved }, { subresource: 'status' })).toThrow(ForbiddenError);
    // …and, crafted by m with a's genuine proof as its base, refused by a.
    const genuine = a.replicationRow(hostKey('a'))!;
    const base = {
      hlc: genuine.statusHlc,
      writer: 'a',
      proof: genuine.statusProof,
      volatile: volatileOf(genuine),
    };
    const crafted = { ...wire(genuine), ...signedStatus(m, ids.m, 'm', hostKey('a'), moved, base) };
    expect(reasonOf(a.applyReplicatedBatch([crafted])[0])).toBe('bad_signature'); // the base does not cover it
    // A verdict that raises readiness is none either.
    const up = { ...verdict(genuine.object.status), phase: 'Ready' };
    const raised = { ...wire(genuine), ...signedStatus(m, ids.m, 'm', hostKey('a'), up, base) };
    expect(reasonOf(a.applyReplicatedBatch([raised])[0])).toBe('not_permitted');
    // The owner's own next status write (it sees the verdict and says Ready=True) replaces it everywhere.
    sync(b, a);
    ownStatus(a, 'a', ids.a.peerId);
    sync(a, b);
    expect((b.get(hostKey('a'))!.status as any).phase).toBe('Ready');
  });

  it('signs at open what this host wrote before it signed, and refuses to open under a name bound to another key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenos-sign-'));
    try {
      const path = join(dir, 'state.db');
      const plain = openStore({ path, namespaced, writer: 'a' });
      plain.create(instance('old', 'a'));
      plain.close();
      const id = await newIdentity();
      const a = signedStore('a', id, { path });
      expect(a.replicationRow(siKey('old'))!.proof).toMatch(new RegExp(`^${id.peerId}\\.`));
      const b = open('b', await newIdentity());
      ownStatus(b, 'b', b.bindings.peerOf('b')!);
      expect(sync(a, b).map(reasonOf).filter(Boolean)).toEqual([]);
      expect(b.get(siKey('old'))).toBeDefined();
      sync(b, a); // a learns whose "b" is
      a.close();
      expect(() => openStore({ path, namespaced, writer: 'b', authority: authorityOf(id) })).toThrow(
        HostNameTakenError,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- helpers: what a hostile key holder crafts ------------------------------------------------

function wire(row: ReplicatedRow): ReplicatedRow {
  return JSON.parse(JSON.stringify(row));
}

function nextHlc(hlc: string, writer: string): string {
  const t = parseHlc(hlc);
  return formatHlc({ physical: t.physical, logical: t.logical + 1, writer });
}

function volatileOf(row: ReplicatedRow): string {
  return hashOf(statusHalves(row.object.status).volatile);
}

/** A status part `writer` claims, signed with `id`'s key, newer than what `store` holds. */
function signedStatus(
  store: SqliteStore,
  id: Identity,
  writer: string,
  key: { kind: string; namespace: string; name: string },
  status: unknown,
  base?: StatusBase,
): Pick<ReplicatedRow, 'statusHlc' | 'statusWriter' | 'statusProof' | 'statusBase' | 'object'> & {
  object: XObject;
} {
  const current = store.replicationRow(key)!;
  const statusHlc = formatHlc({ physical: Date.now() + 1000, logical: 0, writer });
  const statusProof = authorityOf(id).proveStatus(key, statusHlc, status, base);
  return {
    statusHlc,
    statusWriter: writer,
    statusProof,
    ...(base ? { statusBase: base } : {}),
    object: { ...current.object, status: status as XObject['status'] },
  };
}
