// Failover's copies as a keeping host judges them, against a real store, placement and copy store: a copy
// is taken only from the host the instance is bound to (its key), at its epoch, for an instance that asks
// for copies; a header that breaks a rule is refused by field; a copy over the cap, or one that would
// leave the keeper's disk with less than it keeps free, leaves nothing; a kept
// copy is restored only after a failover to this host raised the epoch, and dropped once no failover can
// use it.

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  LayerCopies,
  type LayerCopiesComponents,
} from '../../../controllers/serviceinstance/layer-copies.ts';
import { parseCopyHeader } from '../../../src/cluster/layer-copies/copy-protocol.ts';
import {
  CopyNoRoomError,
  CopyTooLargeError,
  LayerCopyStore,
} from '../../../src/cluster/layer-copies/copy-store.ts';
import { ProcessDriver } from '../../../src/drivers/process/process-driver.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import type { ServiceInstance } from '../../../src/model/service-instance.ts';
import type { ProtocolNode } from '../../../src/p2p/protocol-node.ts';
import { type ClusterFixture, clusterFixture, obj, peerOf } from '../cluster-fixture.ts';

const noNetwork: ProtocolNode = {
  handle: async () => {},
  unhandle: async () => {},
  dialProtocol: async () => {
    throw new Error('no network in this test');
  },
};

let cluster: ClusterFixture;
let dir: string;
let copies: LayerCopyStore;
let keeper: LayerCopies;
let components: LayerCopiesComponents;

beforeEach(async () => {
  cluster = clusterFixture('a');
  for (const h of ['a', 'b', 'c']) cluster.addHost(h);
  cluster.store.create(obj('ServiceTemplate', 'web', { image: { path: '/x' } }));
  dir = await mkdtemp(join(tmpdir(), 'xenos-copies-'));
  copies = new LayerCopyStore({ dir: join(dir, 'layer-copies') });
  await copies.load();
  components = {
    store: cluster.store,
    driver: new ProcessDriver({}, { dataDir: dir }),
    copies,
    placement: cluster.placement,
    node: noNetwork,
    enqueue: () => {},
    log: silentLogger.root,
  };
  keeper = new LayerCopies(components, { hostName: 'a', tickMs: 60_000 });
  keeper.start();
});
afterEach(async () => {
  keeper.stop();
  cluster.close();
  await rm(dir, { recursive: true, force: true });
});

function instance(name: string, host: string, failover: object = { copyEverySeconds: 5 }): ServiceInstance {
  return cluster.store.create(
    obj('ServiceInstance', name, { templateRef: { name: 'web' }, host, failover }),
  ) as ServiceInstance;
}
const header = (i: ServiceInstance, epoch = 0) => ({
  namespace: 'default',
  name: i.metadata.name,
  uid: i.metadata.uid!,
  epoch,
  takenAt: '2026-12-06T00:00:00.000Z',
  driver: 'process',
});
const keep = (i: ServiceInstance, epoch = 0) =>
  copies.receive({ ...header(i, epoch), host: 'b' }, Readable.from([Buffer.from('tar bytes')]), 1024);
const update = (i: ServiceInstance, change: (i: ServiceInstance) => void) => {
  const now = cluster.store.get({ kind: 'ServiceInstance', namespace: 'default', name: i.metadata.name })!;
  change(now);
  return cluster.store.update(now) as ServiceInstance;
};

describe('a keeping host', () => {
  it('takes a copy only from the instance host, at its epoch, when it asks for copies', () => {
    const i = instance('web-1', 'b');
    expect(keeper.authorize(header(i), peerOf('b'))).toBe('b');
    expect(() => keeper.authorize(header(i), peerOf('c'))).toThrow(
      'ServiceInstance default/web-1 is bound to host b, and peer 12D3KooWTestPeerc',
    );
    expect(() => keeper.authorize({ ...header(i), uid: 'other-uid' }, peerOf('b'))).toThrow(
      /\(uid other-uid\) is not in this host's store/,
    );
    expect(() => keeper.authorize(header(i, 1), peerOf('b'))).toThrow('is at failover epoch 0, not 1');
    const none = instance('web-2', 'b', { hostDownSeconds: 5 });
    expect(() => keeper.authorize(header(none), peerOf('b'))).toThrow('asks for no copies');
    const mine = instance('web-3', 'a');
    expect(() => keeper.authorize(header(mine), peerOf('a'))).toThrow('is not bound to another host');
  });

  it('refuses a header that breaks a rule, naming the field', () => {
    const wire = (h: object) => Buffer.from(JSON.stringify(h));
    const good = {
      instance: { namespace: 'default', name: 'web', uid: 'u-1' },
      epoch: 0,
      takenAt: '2026-12-06T00:00:00Z',
      driver: 'process',
    };
    expect(parseCopyHeader(wire(good))).toMatchObject({ name: 'web', uid: 'u-1', epoch: 0 });
    const bad: [object, string][] = [
      [{ ...good, instance: { ...good.instance, uid: '../../etc' } }, 'uid is not a uid'],
      [{ ...good, instance: { ...good.instance, name: 'Web/..' } }, 'instance has no valid name'],
      [{ ...good, epoch: -1 }, 'epoch is not a count'],
      [{ ...good, takenAt: 'yesterday' }, 'takenAt is not a time'],
      [{ ...good, driver: '../qemu' }, 'driver is not a driver name'],
      [{ ...good, pad: 'x'.repeat(2000) }, 'over the cap of 1024'],
    ];
    for (const [h, message] of bad) expect(() => parseCopyHeader(wire(h))).toThrow(message);
  });

  it('drops a copy over its cap and keeps nothing of it', async () => {
    const i = instance('web-1', 'b');
    const big = Readable.from([Buffer.alloc(600), Buffer.alloc(600)]);
    await expect(copies.receive({ ...header(i), host: 'b' }, big, 1024)).rejects.toThrow(CopyTooLargeError);
    expect(copies.get(i.metadata.uid!)).toBeUndefined();
    expect(await readdir(copies.dir)).toEqual([]);
  });

  it('keeps no copy that would leave its disk with less than it keeps free', async () => {
    const i = instance('web-1', 'b');
    const tight = new LayerCopyStore({ dir: copies.dir, minFreeBytes: Number.MAX_SAFE_INTEGER });
    const body = Readable.from([Buffer.from('tar bytes')]);
    await expect(tight.receive({ ...header(i), host: 'b' }, body, 1024)).rejects.toThrow(CopyNoRoomError);
    expect(await readdir(copies.dir)).toEqual([]);
  });

  it('restores a copy only after a failover here, and drops it once no failover can use it', async () => {
    const i = instance('web-1', 'b');
    await keep(i);
    expect(keeper.restorable(i)).toBeUndefined(); // still runs on b
    const here = update(i, (o) => {
      o.spec!.host = 'a';
      o.metadata.annotations = { 'xenos.io/failover-epoch': '1' };
    });
    expect(keeper.restorable(here)).toEqual({
      path: join(copies.dir, `${i.metadata.uid}.tar`),
      host: 'b',
      takenAt: '2026-12-06T00:00:00.000Z',
    });
    // Loaded again after a restart, the same.
    const again = new LayerCopyStore({ dir: copies.dir });
    await again.load();
    expect(again.get(i.metadata.uid!)).toMatchObject({ host: 'b', epoch: 0, bytes: 9 });

    // Failed over to c instead: of no use here.
    const other = instance('web-2', 'b');
    await keep(other);
    update(other, (o) => {
      o.spec!.host = 'c';
      o.metadata.annotations = { 'xenos.io/failover-epoch': '1' };
    });
    // Gone: of no use.
    const gone = instance('web-3', 'b');
    await keep(gone);
    cluster.store.delete({ kind: 'ServiceInstance', namespace: 'default', name: 'web-3' });
    // Still on b, copies kept here: kept.
    const live = instance('web-4', 'b');
    await keep(live);
    await expect
      .poll(() =>
        keeper.prune().then(() =>
          copies
            .list()
            .map((c) => c.name)
            .sort(),
        ),
      )
      .toEqual(['web-1', 'web-4']);
  });
});

describe('the pace of its looks', () => {
  it('looks every idle period while nothing here asks for copies, and soon after an instance that does', async () => {
    vi.useFakeTimers();
    const paced = new LayerCopies(components, { hostName: 'a', tickMs: 1000, idleTickMs: 10_000 });
    const looks = vi.spyOn(paced, 'tick');
    try {
      paced.start();
      await vi.advanceTimersByTimeAsync(1000);
      expect(looks).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(8000);
      expect(looks).toHaveBeenCalledTimes(1); // idle: an idle host is not woken every second
      instance('asks', 'a');
      await vi.advanceTimersByTimeAsync(1000);
      expect(looks).toHaveBeenCalledTimes(2); // brought forward by the new instance
      await vi.advanceTimersByTimeAsync(2000);
      expect(looks).toHaveBeenCalledTimes(4); // and every second while it asks for copies
    } finally {
      paced.stop();
      vi.useRealTimers();
    }
  });
});
