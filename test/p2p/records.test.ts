// Signed DHT records across real nodes: valid records travel; forged, misattributed, oversized, expired and
// older records are rejected by every peer (each peer's own store is checked, not just the reader's view).

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidRecordError, RecordNotFoundError } from '../../src/p2p/errors.ts';
import { isPutAccepted } from '../../src/p2p/kad-dht.ts';
import { loadOrCreatePeerKey } from '../../src/p2p/peer-key.ts';
import { RecordPublisher } from '../../src/p2p/record-publisher.ts';
import {
  encodeRecord,
  hostRecordKey,
  instanceRecordKey,
  MAX_RECORD_BYTES,
  type RecordBody,
  recordSelector,
  verifyRecord,
} from '../../src/p2p/records.ts';
import { type TestHost, TestNet } from './cluster.ts';

const net = new TestNet();
afterEach(() => net.cleanup());

const enc = (s: string) => new TextEncoder().encode(s);

async function keyOf(host: TestHost): Promise<PrivateKey> {
  return (await loadOrCreatePeerKey(join(host.dataDir, 'p2p.key'))).privateKey;
}

async function publisher(host: TestHost): Promise<RecordPublisher> {
  return new RecordPublisher({ node: host.node, privateKey: await keyOf(host) }, { dataDir: host.dataDir });
}

function body(
  peerId: string,
  key: string,
  seq: number,
  payload: unknown,
  extra: Partial<RecordBody> = {},
): RecordBody {
  const issuedAt = Date.now();
  return { v: 1, kind: 'host', key, seq, issuedAt, expiresAt: issuedAt + 60_000, payload, peerId, ...extra };
}

/** Puts raw bytes through libp2p's DHT directly (no local validation); returns how many peers accepted. */
async function rawPut({ node }: TestHost, key: string, value: Uint8Array): Promise<number> {
  let ok = 0;
  for await (const e of node.libp2p.services.dht.put(enc(key), value, {
    signal: AbortSignal.timeout(10_000),
  })) {
    if (isPutAccepted(e, value)) ok++;
  }
  return ok;
}

/** Which of `hosts` hold exactly `value` under `key` in their own DHT store. */
async function holders(hosts: TestHost[], key: string, value: Uint8Array): Promise<number> {
  const held = await Promise.all(hosts.map((h) => h.node.getLocalRecord(enc(key))));
  return held.filter((v) => v != null && Buffer.compare(v, value) === 0).length;
}

describe('signed records', () => {
  it('a published record is fetched, verified, by another node', async () => {
    const [a, , c] = await net.startCluster(4);
    const pub = await publisher(a);
    const key = instanceRecordKey(a.node.peerId.toString(), 'default', 'web-1');
    const { record, peers } = await pub.publishRecord('instance', key, {
      phase: 'Running',
      endpoints: ['10.0.0.5:80'],
    });
    expect(peers).toBeGreaterThan(0);
    const got = await (await publisher(c)).fetchRecord<{ endpoints: string[] }>(key);
    expect(got.payload.endpoints).toEqual(['10.0.0.5:80']);
    expect(got.seq).toBe(record.seq);
    expect(got.peerId).toBe(a.node.peerId.toString());
    await expect((await publisher(c)).fetchRecord(hostRecordKey(c.node.peerId.toString()))).rejects.toThrow(
      RecordNotFoundError,
    );
  });

  it('a record with a forged signature is stored by no peer and not returned', async () => {
    const hosts = await net.startCluster(5);
    const [a, b, c] = hosts;
    const key = hostRecordKey(a.node.peerId.toString());
    const genuine = await encodeRecord(body(a.node.peerId.toString(), key, 5, { cpu: 4 }), await keyOf(a));
    // Tamper with the payload, keep the signature.
    const forged = enc(new TextDecoder().decode(genuine).replace('\\"cpu\\":4', '\\"cpu\\":64'));
    expect(Buffer.compare(forged, genuine)).not.toBe(0);
    await expect(verifyRecord(key, forged)).rejects.toMatchObject({ reason: 'forged' });

    expect(await rawPut(b, key, forged)).toBe(0);
    expect(
      await holders(
        hosts.filter((h) => h !== b),
        key,
        forged,
      ),
    ).toBe(0);
    await expect((await publisher(c)).fetchRecord(key)).rejects.toThrow(RecordNotFoundError);

    // Control: the genuine record, put the same way, is accepted by the peers.
    expect(await rawPut(b, key, genuine)).toBeGreaterThan(0);
    expect(
      await holders(
        hosts.filter((h) => h !== b),
        key,
        genuine,
      ),
    ).toBeGreaterThan(0);
  });

  it("a record under another peer's key is rejected, whoever signs it", async () => {
    const hosts = await net.startCluster(4);
    const [a, b] = hosts;
    const victim = a.node.peerId.toString();
    const key = hostRecordKey(victim);
    const ownBody = await encodeRecord(
      body(b.node.peerId.toString(), key, 9, { evil: true }),
      await keyOf(b),
    );
    const claimsVictim = await encodeRecord(body(victim, key, 9, { evil: true }), await keyOf(b));
    await expect(verifyRecord(key, ownBody)).rejects.toMatchObject({ reason: 'wrong-signer' });
    await expect(verifyRecord(key, claimsVictim)).rejects.toMatchObject({ reason: 'forged' });
    for (const bad of [ownBody, claimsVictim]) {
      expect(await rawPut(b, key, bad)).toBe(0);
      expect(
        await holders(
          hosts.filter((h) => h !== b),
          key,
          bad,
        ),
      ).toBe(0);
    }
    // And the node's own publish path refuses it before anything is sent.
    await expect((await publisher(b)).publishRecord('host', key, { evil: true })).rejects.toMatchObject({
      reason: 'wrong-signer',
    });
  });

  it('an oversized record is refused locally and by every peer', async () => {
    const hosts = await net.startCluster(4);
    const [a, b] = hosts;
    const key = hostRecordKey(a.node.peerId.toString());
    const big = { blob: 'x'.repeat(MAX_RECORD_BYTES) };
    await expect((await publisher(a)).publishRecord('host', key, big)).rejects.toMatchObject({
      reason: 'oversized',
    });
    const bytes = await encodeRecord(body(a.node.peerId.toString(), key, 3, big), await keyOf(a));
    expect(bytes.byteLength).toBeGreaterThan(MAX_RECORD_BYTES);
    expect(await rawPut(a, key, bytes)).toBe(0);
    expect(
      await holders(
        hosts.filter((h) => h !== a),
        key,
        bytes,
      ),
    ).toBe(0);
    expect(b.node.connectedPeers().length).toBeGreaterThan(0);
  });

  it('an expired or malformed record is rejected', async () => {
    const [a] = await net.startCluster(2);
    const id = a.node.peerId.toString();
    const key = hostRecordKey(id);
    const expired = await encodeRecord(body(id, key, 1, {}, { expiresAt: Date.now() - 1 }), await keyOf(a));
    await expect(verifyRecord(key, expired)).rejects.toMatchObject({ reason: 'expired' });
    await expect(verifyRecord(key, enc('{"body":"{}","sig":"x"}'))).rejects.toMatchObject({
      reason: 'malformed',
    });
    const wrongKind = await encodeRecord(body(id, key, 1, {}, { kind: 'instance' }), await keyOf(a));
    await expect(verifyRecord(key, wrongKind)).rejects.toThrow(InvalidRecordError);
  });

  it('an older record (lower seq) never replaces a newer one on any peer', async () => {
    const hosts = await net.startCluster(5);
    const [a, b, c] = hosts;
    const pub = await publisher(a);
    const key = hostRecordKey(a.node.peerId.toString());
    const older = await pub.publishRecord('host', key, { gen: 1 });
    const olderBytes = (await a.node.getLocalRecord(enc(key)))!;
    const newer = await pub.publishRecord('host', key, { gen: 2 });
    expect(newer.record.seq).toBeGreaterThan(older.record.seq);
    const newerBytes = (await a.node.getLocalRecord(enc(key)))!;
    const others = hosts.filter((h) => h !== a);
    expect(await holders(others, key, newerBytes)).toBeGreaterThan(0);

    // Anyone can replay the older (validly signed) record; no peer may go back to it.
    expect(await rawPut(b, key, olderBytes)).toBe(0);
    expect(
      await holders(
        others.filter((h) => h !== b),
        key,
        olderBytes,
      ),
    ).toBe(0);
    expect((await (await publisher(c)).fetchRecord<{ gen: number }>(key)).payload.gen).toBe(2);
    // The selector agrees when both come back from a query.
    expect(recordSelector(enc(key), [olderBytes, newerBytes])).toBe(1);
    expect(recordSelector(enc(key), [newerBytes, olderBytes])).toBe(0);
  });

  it('keeps seq growing across restarts even when the clock is behind the last seq', async () => {
    const [a] = await net.startCluster(2);
    const future = Date.now() + 3_600_000;
    await writeFile(join(a.dataDir, 'p2p.seq'), `${future}\n`);
    const key = hostRecordKey(a.node.peerId.toString());
    const first = await (await publisher(a)).publishRecord('host', key, { n: 1 });
    expect(first.record.seq).toBe(future + 1);
    const second = await (await publisher(a)).publishRecord('host', key, { n: 2 }); // a new publisher: re-reads
    expect(second.record.seq).toBe(future + 2);
  });
});
