// A template's image URL is downloaded by one host only: two ServiceTemplate controllers (host-a, host-b)
// share one store; the fetcher rule names host-b, so the HTTP server sees one download, from host-b, whose
// digest becomes status.digest; host-a's image store stays empty (it pulls from peers when it needs it).

import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ServiceTemplateController } from '../../../controllers/servicetemplate/controller.ts';
import { ImageStore } from '../../../src/images/image-store.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import type { ServiceTemplateStatus } from '../../../src/model/service-template.ts';
import { getCondition } from '../../../src/reconcile/conditions.ts';
import { openStore, type SqliteStore } from '../../../src/store/sqlite-store.ts';
import { until } from '../../wait.ts';

let dir: string;
let store: SqliteStore;
let server: Server;
let requests: string[];
const controllers: ServiceTemplateController[] = [];
const stores: Record<string, ImageStore> = {};

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xenos-url-'));
  store = openStore({ path: join(dir, 'state.db'), namespaced: (k) => k !== 'Host', writer: 'host-a' });
  requests = [];
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    res.writeHead(200, { 'content-length': 9 }).end('disk body');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  for (const host of ['host-a', 'host-b']) {
    stores[host] = new ImageStore({ cacheDir: join(dir, host) });
    const c = new ServiceTemplateController(
      { store, log: silentLogger.root },
      {
        hostName: host,
        cacheDir: join(dir, host),
        imageStore: stores[host],
        urlPolicy: { allowPrivateAddresses: true },
        urlFetcher: () => 'host-b',
      },
    );
    c.start();
    controllers.push(c);
  }
});
afterEach(async () => {
  for (const c of controllers.splice(0)) await c.stop();
  server.closeAllConnections();
  server.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

it('downloads a URL on the fetcher host only', async () => {
  const { port } = server.address() as { port: number };
  store.create({
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceTemplate',
    metadata: { name: 'vm', namespace: 'default' },
    spec: { image: { url: `http://127.0.0.1:${port}/disk.raw` }, process: { command: ['true'] } },
  });
  const status = () =>
    (store.get({ kind: 'ServiceTemplate', namespace: 'default', name: 'vm' })?.status ??
      {}) as ServiceTemplateStatus;
  await until(
    () => `Ready: ${JSON.stringify(status())}`,
    () => getCondition(status(), 'Ready')?.status === 'True',
    15_000,
  );
  expect(requests).toEqual(['/disk.raw']);
  expect(status().digest).toMatch(/^sha256:/);
  expect(await stores['host-b'].get(status().digest!)).toBeDefined();
  expect(await stores['host-a'].list()).toEqual([]);
});
