// Replication carries every object the API takes: the row cap is MAX_OBJECT_BYTES (src/store/limits.ts),
// under the transport's message cap. Over real libp2p nodes with signing stores: an object just under the limit
// written on one host reaches the others; one over it (a store can hold one from before the cap) is never sent,
// so no peer is asked to refuse it again and again; pushed anyway by another peer, it is refused and counted.

import { afterEach, describe, expect, it } from 'vitest';
import type { XObject } from '../../src/model/object.ts';
import { MAX_OBJECT_BYTES } from '../../src/store/limits.ts';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../../src/store/replication/codec.ts';
import { Libp2pTransport } from '../../src/store/replication/libp2p-transport.ts';
import { Replicator } from '../../src/store/replication/replicator.ts';
import type { SqliteStore } from '../../src/store/sqlite-store.ts';
import { newIdentity, signedStore } from '../cluster/signed-store.ts';
import { TestNet, waitFor } from '../p2p/cluster.ts';

const net = new TestNet();
const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
  await net.cleanup();
});

const key = (name: string) => ({ kind: 'ConfigMap', namespace: 'default', name });

/** A ConfigMap whose stored JSON (as the store keeps it: uid, timestamps, generation) is `bytes` long. */
function sized(store: SqliteStore, name: string, bytes: number): XObject {
  const base = (fill: number): XObject => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: 'default', annotations: { fill: 'x'.repeat(fill) } },
  });
  const probe = store.create(base(0), { dryRun: true });
  const overhead = Buffer.byteLength(
    JSON.stringify({
      ...probe,
      metadata: {
        ...probe.metadata,
        uid: 'u'.repeat(36),
        creationTimestamp: '2025-01-01T00:00:00Z',
        generation: 1,
        resourceVersion: undefined,
      },
    }),
  );
  return base(bytes - overhead);
}

describe('replication size limits', () => {
  it('an object just under the limit reaches every host; one over it is refused and counted when a peer pushes it', async () => {
    expect(DEFAULT_MAX_MESSAGE_BYTES).toBeGreaterThan(MAX_OBJECT_BYTES + 64 * 1024);
    const nodes = await net.startCluster(3);
    const hosts = await Promise.all(
      nodes.map(async ({ node }, i) => {
        const store = signedStore(`h${i}`, await newIdentity());
        const transport = new Libp2pTransport({ node });
        const replicator = new Replicator({ store, transport }, { syncIntervalMs: 300 });
        await replicator.start();
        stops.push(async () => {
          await replicator.stop();
          store.close();
        });
        return { node, store, replicator, transport };
      }),
    );
    await waitFor(() => nodes.every((n) => n.node.connectedPeers().length === 2), 10_000, 'a full mesh');
    const [a, b, c] = hosts;

    const near = a.store.create(sized(a.store, 'near-the-limit', MAX_OBJECT_BYTES - 256));
    const { resourceVersion: _, ...stored } = near.metadata;
    expect(Buffer.byteLength(JSON.stringify({ ...near, metadata: stored }))).toBeLessThanOrEqual(
      MAX_OBJECT_BYTES,
    );
    expect(Buffer.byteLength(JSON.stringify({ ...near, metadata: stored }))).toBeGreaterThan(
      MAX_OBJECT_BYTES - 1024,
    );
    for (const h of [b, c]) {
      await waitFor(
        () => h.store.get(key('near-the-limit')) != null,
        20_000,
        'the large object on every host',
      );
      expect(h.store.get(key('near-the-limit'))!.metadata.annotations!.fill).toBe(
        near.metadata.annotations!.fill,
      );
    }

    // The store refuses to hold a larger one (limits.ts); a peer pushes one anyway: refused by size,
    // counted, and nothing of it stored.
    const nearRow = a.store.replicationRow(key('near-the-limit'))!;
    const over = structuredClone(nearRow);
    over.name = 'over-the-limit';
    over.object.metadata.name = 'over-the-limit';
    over.object.metadata.annotations!.fill += 'x'.repeat(4096);
    expect(Buffer.byteLength(JSON.stringify(over.object))).toBeGreaterThan(MAX_OBJECT_BYTES);
    const reply = await c.transport.request(b.node.peerId.toString(), {
      type: 'push',
      rows: [over],
    });
    expect(reply).toEqual({ applied: 0, rejected: 1 });
    expect(b.replicator.refusals.get('too_large')).toBe(1);
    expect(b.store.get(key('over-the-limit'))).toBeUndefined();
  }, 60_000);
});
