// How the ServiceInstance controller writes status, with the real store, the real process driver and a
// real service: at most one status write per reconcile pass, none once nothing changes; a transient driver
// error (the driver's inspect failing, as on an I/O error) is in the instance's status as Synced=False
// with its reason and the step, is retried with backoff, and clears once the driver answers again.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { imageCache, ServiceInstanceController } from '../../../controllers/serviceinstance/controller.ts';
import { ServiceTemplateController } from '../../../controllers/servicetemplate/controller.ts';
import type { Driver } from '../../../src/drivers/driver.ts';
import { DriverError } from '../../../src/drivers/errors.ts';
import { ProcessDriver } from '../../../src/drivers/process/process-driver.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import type { Condition } from '../../../src/model/object.ts';
import { getCondition } from '../../../src/reconcile/conditions.ts';
import { openStore, type SqliteStore } from '../../../src/store/sqlite-store.ts';
import type { Store } from '../../../src/store/store.ts';
import { countStatusWrites } from '../../status-writes.ts';
import { until } from '../../wait.ts';
import { instance, template } from './objects.ts';

const HOST = 'host-a';
const quiet = silentLogger.root;
const signal = new AbortController().signal;

let dir: string;
let store: SqliteStore;
let driver: ProcessDriver;
let templates: ServiceTemplateController;
let controller: ServiceInstanceController | undefined;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xenos-si-writes-'));
  store = openStore({ path: join(dir, 'state.db'), namespaced: (k) => k !== 'Host', writer: HOST });
  templates = new ServiceTemplateController(
    { store, log: quiet },
    { hostName: HOST, cacheDir: join(dir, 'images') },
  );
  templates.start();
  driver = new ProcessDriver({}, { dataDir: dir, cgroups: false, defaultGraceMs: 2000 });
  await driver.start();
  store.create(template());
});

afterEach(async () => {
  await controller?.stop();
  controller = undefined;
  await templates.stop();
  for (const d of await driver.list()) await driver.destroy(d.id);
  await driver.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function newController(s: Store, d: Driver): ServiceInstanceController {
  controller = new ServiceInstanceController(
    { store: s, driver: d, images: imageCache(join(dir, 'images')), log: quiet },
    {
      hostName: HOST,
      templateRetryMs: 100,
      machine: { backoffBaseMs: 200, backoffMaxMs: 800, stableAfterMs: 60_000 },
      actors: { pollMs: 50, stopGraceMs: 2000 },
    },
  );
  return controller;
}

const statusOf = (name: string) => store.get({ kind: 'ServiceInstance', namespace: 'default', name })?.status;
const isReady = (name: string) => getCondition(statusOf(name), 'Ready')?.status === 'True';

describe('ServiceInstance status writes', () => {
  it('at most one status write per reconcile pass, and none once nothing changes', async () => {
    const counted = countStatusWrites(store);
    // Not started: the test runs every pass itself and counts the writes each one made.
    const c = newController(counted.store, driver);
    store.create(instance('one'));
    const perPass: number[] = [];
    const pass = async () => {
      const before = counted.total();
      await c.reconcile('default/one', { signal });
      perPass.push(counted.total() - before);
    };
    await until(
      () => `Ready (writes per pass so far: ${perPass.join(',')})`,
      async () => {
        await pass();
        return isReady('one');
      },
      { intervalMs: 20 },
    );
    expect(Math.max(...perPass)).toBe(1);
    // Ready took several passes (placed, finalizer, domain starting, running, healthy), each at most one write.
    expect(perPass.length).toBeGreaterThan(2);
    const rv = store.get({ kind: 'ServiceInstance', namespace: 'default', name: 'one' })!.metadata
      .resourceVersion;
    const steady = perPass.length;
    for (let i = 0; i < 5; i++) await pass();
    expect(perPass.slice(steady)).toEqual([0, 0, 0, 0, 0]);
    expect(
      store.get({ kind: 'ServiceInstance', namespace: 'default', name: 'one' })!.metadata.resourceVersion,
    ).toBe(rv);
  });

  it('a transient driver error is Synced=False with its reason, retried with backoff, and clears', async () => {
    let failures = 2;
    const flaky = new Proxy(driver, {
      get(target, prop) {
        if (prop === 'inspect') {
          return (id: string, opts?: { signal?: AbortSignal }) => {
            if (failures > 0) {
              failures--;
              return Promise.reject(
                new DriverError('InspectFailed', `reading domain ${id}: EIO (injected)`, id),
              );
            }
            return (target as Driver).inspect(id, opts);
          };
        }
        const v = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    // Every Synced condition the instance's status ever held, from the store's watch.
    const synced: Condition[] = [];
    const unwatch = store.watch('ServiceInstance', {}, (ev) => {
      const cond = getCondition(ev.object.status, 'Synced');
      if (cond && JSON.stringify(cond) !== JSON.stringify(synced.at(-1))) synced.push(cond);
    });
    try {
      newController(store, flaky).start();
      store.create(instance('flaky'));
      await until('Ready after the driver recovered', () => isReady('flaky'));
      expect(failures).toBe(0);
      const failed = synced.find((s) => s.status === 'False');
      expect(failed).toMatchObject({ reason: 'InspectFailed' });
      expect(failed!.message).toMatch(
        /^machine: reading domain .*: EIO \(injected\) \(retrying with backoff\)$/,
      );
      expect(getCondition(statusOf('flaky'), 'Synced')).toMatchObject({
        status: 'True',
        reason: 'ReconcileSuccess',
      });
    } finally {
      unwatch();
    }
  });
});
