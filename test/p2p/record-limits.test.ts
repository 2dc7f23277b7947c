// What a host publishes always fits the DHT record cap, and old records cannot be replayed: over real nodes,
// a host running as many instances and endpoints as the kinds allow publishes a record under 16 KiB that says
// what it left out (Ready instances kept first), and discovery still finds it; a genuine record issued long
// ago, valid too long or issued in the future is refused — counted by reason — by a peer that never saw a
// newer one.

import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Discovery } from '../../src/p2p/discovery.ts';
import type { InstanceEndpoints } from '../../src/p2p/host-status.ts';
import { isPutAccepted } from '../../src/p2p/kad-dht.ts';
import { loadOrCreatePeerKey } from '../../src/p2p/peer-key.ts';
import { MAX_ENTRY_ENDPOINTS } from '../../src/p2p/record-fit.ts';
import { RecordPublisher } from '../../src/p2p/record-publisher.ts';
import {
  encodeRecord,
  hostRecordKey,
  MAX_RECORD_BYTES,
  MAX_RECORD_LIFETIME_MS,
  type RecordBody,
  verifyRecord,
} from '../../src/p2p/records.ts';
import { type TestHost, TestNet, waitFor } from './cluster.ts';

const net = new TestNet();
const started: Discovery[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((d) => d.stop()));
  await net.cleanup();
});

const enc = (s: string) => new TextEncoder().encode(s);

async function keyOf(host: TestHost) {
  return (await loadOrCreatePeerKey(join(host.dataDir, 'p2p.key'))).privateKey;
}

async function discoveryOf(host: TestHost): Promise<Discovery> {
  const records = new RecordPublisher(
    { node: host.node, privateKey: await keyOf(host) },
    { dataDir: host.dataDir },
  );
  const d = new Discovery({ node: host.node, records }, { statusTtl: 60_000 });
  await d.start();
  started.push(d);
  return d;
}

async function rawPut({ node }: TestHost, key: string, value: Uint8Array): Promise<number> {
  let ok = 0;
  for await (const e of node.libp2p.services.dht.put(enc(key), value, {
    signal: AbortSignal.timeout(10_000),
  })) {
    if (isPutAccepted(e, value)) ok++;
  }
  return ok;
}

describe('DHT record limits', () => {
  it('a host with more instances and endpoints than fit publishes a truncated record, Ready ones first', async () => {
    const [a, , c] = await net.startCluster(3);
    const da = await discoveryOf(a);
    // 110 instances (the default --max-instances) still starting, each with three endpoints; one more, Ready,
    // of the type asked for, listed last, with 128 endpoints (the CRD's maximum).
    const crowd: InstanceEndpoints[] = Array.from({ length: 110 }, (_, i) => ({
      namespace: 'default',
      name: `busy-${i}`,
      serviceType: 'busy',
      endpoints: [0, 1, 2].map((j) => `http://10.1.${i}.${j}:8080/service/path/${'x'.repeat(40)}`),
      ready: false,
    }));
    const web: InstanceEndpoints = {
      namespace: 'default',
      name: 'web-1',
      serviceType: 'web',
      endpoints: Array.from({ length: 128 }, (_, j) => `10.0.0.1:${8000 + j}`),
      ready: true,
    };
    const record = await da.publishStatus([...crowd, web]);
    const bytes = (await a.node.getLocalRecord(enc(hostRecordKey(a.node.peerId.toString()))))!;
    expect(bytes.byteLength).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    const status = record.payload;
    expect(status.truncated!.instances).toBe(111 - status.instances.length);
    // The Ready instance with short endpoints made it in, its endpoints cut to what an entry carries.
    const listed = status.instances.find((i) => i.name === 'web-1')!;
    expect(listed.endpoints).toHaveLength(MAX_ENTRY_ENDPOINTS);
    expect(status.truncated!.endpoints).toBe(128 - MAX_ENTRY_ENDPOINTS);
    // Ready instances come first: the last one given is the first listed.
    expect(status.instances[0].name).toBe('web-1');
    expect(status.instances.length).toBeGreaterThan(10);
    // Peers took it, and discovery finds the instance and says the record was truncated.
    await da.advertise('web');
    const found = await (await discoveryOf(c)).discover('web');
    expect(found.map((h) => h.instances.map((i) => i.name))).toEqual([['web-1']]);
    expect(found[0].truncated).toEqual(status.truncated);
  });

  it('refuses records issued long ago, valid too long, or from the future — counted by reason', async () => {
    const [a, b, c] = await net.startCluster(3);
    // A put reaches the peers in a's routing table: wait until both are in it.
    await waitFor(() => a.node.routingTableSize >= 2, 10_000, "a's routing table");
    const id = a.node.peerId.toString();
    const key = hostRecordKey(id);
    const now = Date.now();
    const body = (over: Partial<RecordBody>): RecordBody => ({
      v: 1,
      kind: 'host',
      key,
      seq: now,
      issuedAt: now,
      expiresAt: now + 15_000,
      payload: { instances: [] },
      peerId: id,
      ...over,
    });
    const privateKey = await keyOf(a);
    // Genuine records of a (signed with its key), as a replaying peer would have kept them.
    const cases: Array<[string, RecordBody]> = [
      ['expired', body({ seq: now - 7_200_000, issuedAt: now - 7_200_000, expiresAt: now - 7_185_000 })],
      ['lifetime', body({ seq: now - 7_200_000, issuedAt: now - 7_200_000, expiresAt: now + 60_000 })],
      ['lifetime', body({ expiresAt: now + MAX_RECORD_LIFETIME_MS + 1 })],
      ['lifetime', body({ expiresAt: undefined })],
      [
        'not-yet-valid',
        body({ seq: now + 3_600_000, issuedAt: now + 3_600_000, expiresAt: now + 3_610_000 }),
      ],
    ];
    const before = { b: b.node.recordRefusals.snapshot(), c: c.node.recordRefusals.snapshot() };
    for (const [reason, record] of cases) {
      const bytes = await encodeRecord(record, privateKey);
      await expect(verifyRecord(key, bytes), reason).rejects.toMatchObject({ reason });
      // Straight to the peers, which never held any record of a: none stores it.
      expect(await rawPut(a, key, bytes), reason).toBe(0);
      for (const h of [b, c]) expect(await h.node.getLocalRecord(enc(key))).toBeUndefined();
    }
    for (const h of ['b', 'c'] as const) {
      const after = (h === 'b' ? b : c).node.recordRefusals.snapshot();
      expect(after.expired - before[h].expired, `${h} expired`).toBeGreaterThanOrEqual(1);
      expect(after.lifetime - before[h].lifetime, `${h} lifetime`).toBeGreaterThanOrEqual(3);
      expect(after.not_yet_valid - before[h].not_yet_valid, `${h} not_yet_valid`).toBeGreaterThanOrEqual(1);
    }
    // Times no clock can hold are malformed, not a crash of the check that reads them.
    const absurd = await encodeRecord(body({ issuedAt: 1e300 }), privateKey);
    await expect(verifyRecord(key, absurd)).rejects.toMatchObject({ reason: 'malformed' });
    // Control: a current record of a is taken.
    expect(await rawPut(a, key, await encodeRecord(body({}), privateKey))).toBeGreaterThan(0);
  });
});
