// LocalControllers as the daemon uses it: started after the store and tokens exist, it selects the
// driver, imports templates and runs instances; stopped, it leaves domains running for the next start.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { TokenAuthenticator } from '../../src/api/auth.ts';
import { LocalControllers } from '../../src/daemon/local-controllers.ts';
import { ProcessDriver } from '../../src/drivers/process/process-driver.ts';
import { silentLogger } from '../../src/log/logger.ts';
import type { ServiceInstanceStatus } from '../../src/model/service-instance.ts';
import { getCondition } from '../../src/reconcile/conditions.ts';
import { openStore } from '../../src/store/sqlite-store.ts';
import { unmountUnder } from '../unmount-under.ts';
import { until } from '../wait.ts';

const IMAGE = join(import.meta.dirname, '..', 'controllers', 'serviceinstance', 'fixtures', 'http-service');
const dir = mkdtempSync(join(tmpdir(), 'xenos-lc-'));
const store = openStore({ path: join(dir, 'state.db'), namespaced: (k) => k !== 'Host', writer: 'h' });
const parts: LocalControllers[] = [];

afterEach(async () => {
  for (const p of parts.splice(0)) await p.stop();
  const driver = new ProcessDriver({}, { dataDir: dir, cgroups: false });
  for (const d of await driver.list()) await driver.destroy(d.id);
  store.close();
  unmountUnder(dir);
  rmSync(dir, { recursive: true, force: true });
});

it('runs a template and an instance with the process driver, and adopts it after a restart', async () => {
  const auth = new TokenAuthenticator({ dataDir: dir });
  const make = () => {
    const p = new LocalControllers(
      { store: () => store, auth: () => auth, apiUrl: () => 'http://127.0.0.1:1', logger: silentLogger },
      { dataDir: dir, hostName: 'h', driver: 'process', actors: { pollMs: 50 } },
    );
    parts.push(p);
    return p;
  };
  const first = make();
  await first.start();
  expect(first.driverName).toBe('process');
  store.create({
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceTemplate',
    metadata: { name: 'web', namespace: 'default' },
    spec: {
      image: { path: IMAGE },
      process: { command: ['node', 'server.mjs'] },
      ports: [{ name: 'http', port: 8080, appProtocol: 'http' }],
      healthCheck: { tcp: { port: 'http' }, periodSeconds: 1 },
    },
  });
  store.create({
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name: 'web-1', namespace: 'default' },
    spec: { templateRef: { name: 'web' } },
  });
  const status = () =>
    (store.get({ kind: 'ServiceInstance', namespace: 'default', name: 'web-1' })?.status ??
      {}) as ServiceInstanceStatus;
  await until('Ready', () => getCondition(status(), 'Ready')?.status === 'True');
  const url = status().endpoints![0].url!;
  const pid = ((await (await fetch(url)).json()) as { pid: number }).pid;

  await first.stop();
  parts.splice(0);
  const second = make();
  await second.start();
  const adopted = () =>
    store
      .list('Event', { namespace: 'default' })
      .items.some((e) => (e as unknown as { reason: string }).reason === 'Adopted');
  await until('adopted', adopted);
  expect(getCondition(status(), 'Ready')?.status).toBe('True');
  expect(((await (await fetch(status().endpoints![0].url!)).json()) as { pid: number }).pid).toBe(pid);
});
