// Trust at the edge of the cluster, against three real xenosd processes: a host holding another cluster
// key cannot join (its dials fail at the private-network layer and no host ever lists it), and a status
// record forged for one host — or replayed older than the one held — is refused by every peer's DHT
// validator, while discovery keeps answering from the genuine record.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { QueryEvent } from '@libp2p/kad-dht';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openXenosNode, type XenosNode } from '../../src/p2p/node.ts';
import { loadOrCreatePeerKey, PEER_KEY_FILE } from '../../src/p2p/peer-key.ts';
import { encodeRecord, hostRecordKey, type RecordBody } from '../../src/p2p/records.ts';
import { type ClusterHost, TestCluster, waitFor } from './harness.ts';

describe('cluster trust', () => {
  const cluster = new TestCluster({ hostTimeout: '3s' });
  const scratch = mkdtempSync(join(tmpdir(), 'xenos-trust-'));
  let hosts: ClusterHost[];
  let intruder: XenosNode | undefined;
  let witness: XenosNode | undefined;

  beforeAll(async () => {
    // Short-lived DHT records, so b republishes newer ones within the test (the replay below needs them).
    hosts = await cluster.startHosts(['a', 'b', 'c'], ['--dht-record-ttl', '10s']);
  }, 60_000);

  afterAll(async () => {
    await intruder?.stop();
    await witness?.stop();
    await cluster.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  it('a host with another cluster key cannot join', async () => {
    const [a] = hosts;
    const d = await cluster.startHost('d', { keyFile: join(scratch, 'other.key'), join: a.addrs });
    await waitFor(() => /bootstrap: no peer reachable/.test(d.stderr()), 'd failing to reach a');
    // d dialled and failed at least once, and then again: still alone.
    const seen = d.stderr().match(/bootstrap: no peer reachable/g)?.length ?? 0;
    await waitFor(
      () => (d.stderr().match(/bootstrap: no peer reachable/g)?.length ?? 0) > seen,
      'd failing again',
    );
    for (const h of hosts) expect(await cluster.hostNames(h)).toEqual(['a', 'b', 'c']);
    expect(await cluster.hostNames(d)).toEqual(['d']);
    await d.stop();
  }, 60_000);

  it('forged and replayed status records are rejected by every peer', async () => {
    const [a, b] = hosts;
    // A member of the cluster (it holds the key) that tries to lie about host b.
    const dir = join(scratch, 'intruder');
    intruder = await openXenosNode({
      dataDir: dir,
      listen: '127.0.0.1:0',
      clusterKeyFile: cluster.keyFile,
      bootstrap: a.addrs,
    });
    await intruder.start();
    for (const h of hosts) await intruder.dial(h.addrs[0]);
    // Reads go through a node that never puts (a node keeps its own puts unvalidated).
    witness = await openXenosNode({
      dataDir: join(scratch, 'witness'),
      listen: '127.0.0.1:0',
      clusterKeyFile: cluster.keyFile,
      bootstrap: a.addrs,
    });
    await witness.start();
    for (const h of hosts) await witness.dial(h.addrs[0]);
    const { privateKey } = await loadOrCreatePeerKey(join(dir, PEER_KEY_FILE));
    const key = hostRecordKey(b.peerId);
    const keyBytes = new TextEncoder().encode(key);

    const genuine = await waitFor(() => witness!.dhtGet(keyBytes), "b's genuine host record");
    const held = JSON.parse(JSON.parse(new TextDecoder().decode(genuine)).body) as RecordBody;

    /** PUTs `value` straight through kad-dht (no local validation) and reports each peer's answer. */
    async function putToAll(value: Uint8Array) {
      const accepted = new Set<string>();
      const refused = new Set<string>();
      const events: QueryEvent[] = [];
      try {
        for await (const ev of intruder!.libp2p.services.dht.put(keyBytes, value, {
          signal: AbortSignal.timeout(10_000),
        })) {
          events.push(ev);
          if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') accepted.add(ev.from.toString());
          if (ev.name === 'QUERY_ERROR') refused.add(ev.from.toString());
        }
      } catch {
        // every peer refusing can end the query with an error: what each peer did is in the events
      }
      return { accepted, refused };
    }

    // Forged: b's key, b's name on it, a newer seq — but signed by the intruder.
    const forged = await encodeRecord(
      {
        ...held,
        seq: held.seq + 1_000_000,
        issuedAt: Date.now(),
        expiresAt: Date.now() + 60_000,
        payload: {
          instances: [
            {
              namespace: 'default',
              name: 'evil',
              serviceType: 'web.http',
              endpoints: ['http://203.0.113.9/'],
              ready: true,
            },
          ],
        },
      },
      privateKey,
    );
    const forgedPut = await putToAll(forged);
    expect([...forgedPut.accepted]).toEqual([]);
    for (const h of hosts)
      expect(forgedPut.refused, `${h.name} refused the forged record`).toContain(h.peerId);

    // Replayed: b's own genuine record, once b has published newer ones. Two newer seqs are awaited, so
    // the first of them has certainly reached every peer (b puts to all of them) before the replay.
    const seqNow = async () => {
      const now = await witness!.dhtGet(keyBytes);
      return now == null ? 0 : (JSON.parse(JSON.parse(new TextDecoder().decode(now)).body) as RecordBody).seq;
    };
    const seq1 = await waitFor(async () => {
      const s = await seqNow();
      return s > held.seq ? s : 0;
    }, 'b republishing its host record');
    await waitFor(async () => (await seqNow()) > seq1, 'b republishing its host record again');
    const replay = await putToAll(genuine);
    expect([...replay.accepted]).toEqual([]);
    for (const h of hosts)
      expect(replay.refused, `${h.name} refused the replayed record`).toContain(h.peerId);

    // Nobody believes the lie: the record every host serves is still b's own.
    const after = await witness.dhtGet(keyBytes);
    const body = JSON.parse(JSON.parse(new TextDecoder().decode(after!)).body) as RecordBody;
    expect(body.peerId).toBe(b.peerId);
    expect(JSON.stringify(body.payload)).not.toContain('evil');
  }, 60_000);
});
