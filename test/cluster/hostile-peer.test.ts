// A hostile peer that holds the cluster key, against real xenosd processes: a real libp2p node in this process
// speaks the state-replication protocol and the DHT with crafted messages — rows forged in another host's name,
// written by a host that may not, tampered with on the way, unsigned, with a hostile clock, over the size cap,
// replayed; malformed messages; DHT records from the future, oversized, forged. Every one is refused, the
// victim's state does not move, it keeps writing at full speed, and its refusal counters (logged, rate-limited,
// under their metric names) say why. What a key holder may do — write a spec — it still can. A failover copy
// of an instance it does not run is refused and nothing of it kept.

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { QueryEvent } from '@libp2p/kad-dht';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendLayerCopy } from '../../src/cluster/layer-copies/copy-protocol.ts';
import { clusterRowAuthority } from '../../src/cluster/write-policy.ts';
import type { XObject } from '../../src/model/object.ts';
import { openXenosNode, type XenosNode } from '../../src/p2p/node.ts';
import { loadOrCreatePeerKey, PEER_KEY_FILE } from '../../src/p2p/peer-key.ts';
import { encodeRecord, hostRecordKey, MAX_RECORD_BYTES } from '../../src/p2p/records.ts';
import { formatHlc, parseHlc } from '../../src/store/hlc.ts';
import { MAX_OBJECT_BYTES } from '../../src/store/limits.ts';
import { Libp2pTransport } from '../../src/store/replication/libp2p-transport.ts';
import type { RowAuthority } from '../../src/store/row-authority.ts';
import type { ReplicatedRow } from '../../src/store/sqlite-store.ts';
import { logLines } from '../daemon/xenosd-process.ts';
import { type ClusterHost, SI, TestCluster, waitFor } from './harness.ts';

const HOSTS = '/apis/xenos.io/v1alpha1/hosts';
type Key = { kind: string; namespace: string; name: string };
const hostKey = (name: string): Key => ({ kind: 'Host', namespace: '', name });
const siKey = (name: string): Key => ({ kind: 'ServiceInstance', namespace: 'default', name });

describe('a hostile peer holding the cluster key', () => {
  const cluster = new TestCluster({ hostTimeout: '3s' });
  let a: ClusterHost;
  let b: ClusterHost;
  let hostile: XenosNode;
  let wire: Libp2pTransport;
  let authority: RowAuthority;

  beforeAll(async () => {
    [a, b] = await cluster.startHosts(['a', 'b']);
    // An instance bound to b (its template does not exist: b reports it Pending, nothing runs).
    const res = await a.api(SI, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'xenos.io/v1alpha1',
        kind: 'ServiceInstance',
        metadata: { name: 'web' },
        spec: { templateRef: { name: 'none' }, host: 'b' },
      }),
    });
    expect(res.status).toBe(201);
    await waitFor(
      async () => (await cluster.json(a, `${SI}/web`)).status?.host === 'b',
      "b's status of web on a",
    );
    const dir = join(cluster.root, 'mallory');
    hostile = await openXenosNode({ dataDir: dir, listen: '127.0.0.1:0', clusterKeyFile: cluster.keyFile });
    await hostile.start();
    await hostile.dial(a.addrs[0]);
    await hostile.dial(b.addrs[0]);
    const { privateKey } = await loadOrCreatePeerKey(join(dir, PEER_KEY_FILE));
    authority = clusterRowAuthority(privateKey, peerIdFromPrivateKey(privateKey).toString());
    wire = new Libp2pTransport({ node: hostile });
  }, 60_000);

  afterAll(async () => {
    await hostile?.stop();
    await cluster.cleanup();
  }, 60_000);

  const push = (rows: unknown[]) =>
    wire.request(a.peerId, { type: 'push', rows, seen: [] }) as Promise<{
      applied: number;
      rejected: number;
    }>;

  /** A's current row of `key`, as any peer may ask for it (anti-entropy's exchange). */
  async function genuine(key: Key): Promise<ReplicatedRow> {
    const reply = (await wire.request(a.peerId, {
      type: 'exchange',
      rows: [],
      want: [[key.kind, key.namespace, key.name]],
    })) as { rows: ReplicatedRow[] };
    return reply.rows[0];
  }

  const soon = (writer: string, ms = 1000, logical = 0) =>
    formatHlc({ physical: Date.now() + ms, logical, writer });

  /** `row` with its status replaced and signed by mallory's key as `writer`. */
  function withStatus(row: ReplicatedRow, key: Key, writer: string, status: unknown): ReplicatedRow {
    const statusHlc = soon(writer);
    return {
      ...row,
      object: { ...row.object, status: status as XObject['status'] },
      statusHlc,
      statusWriter: writer,
      statusProof: authority.proveStatus(key, statusHlc, status, undefined),
      statusBase: undefined,
    };
  }

  /** `row` with its main part replaced by `object`, signed by mallory's key as `writer` at `hlc`. */
  function withMain(
    row: ReplicatedRow,
    key: Key,
    writer: string,
    object: XObject,
    hlc = soon(writer),
  ): ReplicatedRow {
    return { ...row, object, hlc, writer, proof: authority.proveMain(key, hlc, false, object) };
  }

  function refusedLine(host: ClusterHost, metric: string, reason: string): boolean {
    return logLines(host.stderr()).some(
      (l) => l.level === 'warn' && l.metric === metric && l.reason === reason,
    );
  }

  it('refuses forged, unauthorised, tampered, unsigned, skewed and oversized rows, and counts each', async () => {
    const hostB = await genuine(hostKey('b'));
    const web = await genuine(siKey('web'));
    const evil = { api: 'https://203.0.113.9:7443' };
    const cases: Array<[string, ReplicatedRow]> = [
      // b's Host status in b's name: b's name is bound to b's key.
      ['writer_mismatch', withStatus(hostB, hostKey('b'), 'b', { ...hostB.object.status, addresses: evil })],
      // b's Host status in its own name: only b writes it.
      [
        'not_permitted',
        withStatus(hostB, hostKey('b'), 'mallory', { ...hostB.object.status, addresses: evil }),
      ],
      // The status of an instance bound to b.
      [
        'not_permitted',
        withStatus(web, siKey('web'), 'mallory', {
          phase: 'Running',
          endpoints: [{ name: 'http', address: '203.0.113.9', port: 80, protocol: 'TCP' }],
        }),
      ],
      // a's genuine row, its spec changed on the way (a newer version claimed, a's proof kept).
      [
        'bad_signature',
        {
          ...web,
          hlc: soon(web.writer),
          object: { ...web.object, spec: { templateRef: { name: 'evil' }, host: 'b' } },
        },
      ],
      // No proof at all.
      ['unsigned', { ...web, hlc: soon('mallory'), writer: 'mallory', proof: '' }],
      // A clock an hour ahead, and one within the skew but with its counter near the top.
      [
        'clock_skew',
        withMain(web, siKey('skew-1'), 'mallory', renamed(web.object, 'skew-1'), soon('mallory', 3_600_000)),
      ],
      [
        'clock_skew',
        withMain(
          web,
          siKey('skew-2'),
          'mallory',
          renamed(web.object, 'skew-2'),
          soon('mallory', 30_000, 9_999_999_998),
        ),
      ],
      // An object over the size every host takes.
      [
        'too_large',
        withMain(web, siKey('huge'), 'mallory', {
          ...renamed(web.object, 'huge'),
          metadata: {
            ...renamed(web.object, 'huge').metadata,
            annotations: { x: 'y'.repeat(MAX_OBJECT_BYTES) },
          },
        }),
      ],
    ];
    for (const [reason, row] of cases) {
      const keyed = { ...row, ...keyOf(row.object) };
      expect(await push([keyed]), reason).toEqual({ applied: 0, rejected: 1 });
      await waitFor(
        () => refusedLine(a, 'xenos_replication_rows_refused_total', reason),
        `a counting ${reason}`,
      );
    }

    // Nothing moved on a, nor on b (nothing was forwarded).
    for (const h of [a, b]) {
      const host = await cluster.json(h, `${HOSTS}/b`);
      expect(host.status.addresses.api, h.name).not.toBe(evil.api);
      expect(host.status.peerId).toBe(b.peerId);
      const si = await cluster.json(h, `${SI}/web`);
      expect(si.spec.templateRef.name).toBe('none');
      expect(si.status.host).toBe('b');
      expect(JSON.stringify(si.status)).not.toContain('203.0.113.9');
      for (const n of ['skew-1', 'skew-2', 'huge']) expect((await h.api(`${SI}/${n}`)).status, n).toBe(404);
    }

    // a's clock did not jump: its writes go on, each one answered at once.
    for (let i = 0; i < 20; i++) {
      const res = await a.api(SI, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          apiVersion: 'xenos.io/v1alpha1',
          kind: 'ServiceInstance',
          metadata: { name: `after-${i}` },
          spec: { templateRef: { name: 'none' }, runStrategy: 'Halted', hostSelector: { zone: 'nowhere' } },
        }),
      });
      expect(res.status).toBe(201);
    }
    const after = await genuine(siKey('after-19'));
    expect(parseHlc(after.hlc).physical).toBeLessThan(Date.now() + 1000);
    expect(parseHlc(after.hlc).logical).toBeLessThan(1000);
  }, 60_000);

  it('takes what a key holder may write (a spec), ignores a replayed older version, refuses malformed messages', async () => {
    const before = await genuine(siKey('web'));
    // A spec change in mallory's own name: users write specs through any host, so any host may.
    const labelled = withMain(before, siKey('web'), 'mallory', {
      ...before.object,
      metadata: { ...before.object.metadata, labels: { by: 'mallory' } },
    });
    expect(await push([labelled])).toEqual({ applied: 1, rejected: 0 });
    await waitFor(
      async () => (await cluster.json(b, `${SI}/web`)).metadata.labels?.by === 'mallory',
      'the spec change forwarded to b',
    );
    // The version before it, replayed: older, so nothing changes (last writer wins).
    expect(await push([before])).toEqual({ applied: 0, rejected: 0 });
    expect((await cluster.json(a, `${SI}/web`)).metadata.labels).toEqual({ by: 'mallory' });
    // Not the protocol at all.
    await expect(wire.request(a.peerId, { type: 'push', rows: 'all of them' })).rejects.toThrow(/malformed/);
    await expect(wire.request(a.peerId, { type: 'gossip' })).rejects.toThrow(/malformed/);
    await waitFor(
      () => refusedLine(a, 'xenos_replication_messages_refused_total', 'malformed'),
      'a counting it',
    );
  }, 60_000);

  it('refuses a failover copy of an instance it does not run', async () => {
    const web = await cluster.json(a, `${SI}/web`);
    const header = {
      namespace: 'default',
      name: 'web',
      uid: web.metadata.uid,
      epoch: 0,
      takenAt: new Date().toISOString(),
      driver: 'process',
    };
    const offer = () =>
      sendLayerCopy(
        hostile,
        a.peerId,
        header,
        async (out) => {
          out.end(Buffer.alloc(4096, 1));
        },
        AbortSignal.timeout(10_000),
      );
    await expect(offer()).rejects.toThrow(/refused: .*asks for no copies/);
    // A key holder may ask for copies (a spec), and still cannot send one in b's name.
    const res = await a.api(`${SI}/web`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/merge-patch+json' },
      body: JSON.stringify({ spec: { failover: { copyEverySeconds: 10 } } }),
    });
    expect(res.status).toBe(200);
    await expect(offer()).rejects.toThrow(/refused: .*bound to host b, and peer \S+ is not its key/);
    expect(await readdir(join(a.dataDir, 'layer-copies'))).toEqual([]);
    expect(a.stderr()).toMatch(/refused a copy of ServiceInstance default\/web from peer/);
  });

  it('refuses DHT records from the future, oversized or forged, on every host', async () => {
    await waitFor(() => hostile.routingTableSize >= 2, "mallory's routing table");
    const id = hostile.peerId.toString();
    const { privateKey } = await loadOrCreatePeerKey(join(cluster.root, 'mallory', PEER_KEY_FILE));
    const now = Date.now();
    const record = (key: string, over: object) =>
      encodeRecord(
        {
          v: 1,
          kind: 'host',
          key,
          seq: now,
          issuedAt: now,
          expiresAt: now + 15_000,
          payload: { instances: [] },
          peerId: id,
          ...over,
        },
        privateKey,
      );
    const cases: Array<[string, string, Uint8Array]> = [
      [
        'not_yet_valid',
        hostRecordKey(id),
        await record(hostRecordKey(id), { issuedAt: now + 3_600_000, expiresAt: now + 3_610_000 }),
      ],
      [
        'oversized',
        hostRecordKey(id),
        await record(hostRecordKey(id), { payload: { blob: 'x'.repeat(MAX_RECORD_BYTES) } }),
      ],
      ['wrong_signer', hostRecordKey(b.peerId), await record(hostRecordKey(b.peerId), {})],
    ];
    for (const [reason, key, value] of cases) {
      const refused = new Set<string>();
      try {
        for await (const ev of hostile.libp2p.services.dht.put(new TextEncoder().encode(key), value, {
          signal: AbortSignal.timeout(10_000),
        }) as AsyncIterable<QueryEvent>) {
          if (ev.name === 'QUERY_ERROR') refused.add(ev.from.toString());
          if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE')
            throw new Error(`${ev.from} took it`);
        }
      } catch (err) {
        if ((err as Error).message.endsWith('took it')) throw err;
      }
      for (const h of [a, b]) {
        expect(refused, `${h.name} refused the ${reason} record`).toContain(h.peerId);
        await waitFor(
          () => refusedLine(h, 'xenos_dht_records_refused_total', reason),
          `${h.name} counting ${reason}`,
        );
      }
    }
  }, 60_000);
});

function renamed(obj: XObject, name: string): XObject {
  return { ...obj, metadata: { ...obj.metadata, name, uid: `uid-${name}` }, status: undefined };
}

function keyOf(obj: XObject): Key {
  const namespace = obj.kind === 'Host' ? '' : (obj.metadata.namespace ?? 'default');
  return { kind: obj.kind, namespace, name: obj.metadata.name };
}
