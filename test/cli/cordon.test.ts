// xenosctl cordon and uncordon against a real xenosd: the Host's spec.unschedulable set and cleared (and
// spec.drain with it), kubectl's words for each outcome, `get hosts` showing it, and a host that does not
// exist refused before any host is changed. And drain of a host whose xenosd is down: its instances'
// migrations stay Pending (only the source host carries a migration out), so drain gives up at --timeout
// and says which instances are left and where their migrations stand. The hosts besides the daemon's own are Host objects without a
// xenosd (a long host timeout keeps the Host controller from marking them down meanwhile).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XenosClient } from '../../src/client/client.ts';
import { HOST, SERVICE_INSTANCE, SERVICE_MIGRATION, SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import { removeDataDir, startXenosd, type XenosdProcess } from '../daemon/xenosd-process.ts';
import { xenosctlInProcess } from './run-cli-in-process.ts';

let xenosd: XenosdProcess;
let client: XenosClient;
let env: Record<string, string>;

beforeAll(async () => {
  xenosd = await startXenosd({ args: ['--host-timeout', '10m'] });
  client = new XenosClient({ server: xenosd.url, token: xenosd.token });
  env = { XENOS_SERVER: xenosd.url, XENOS_TOKEN: xenosd.token };
  for (const name of ['cordon-a', 'cordon-b'])
    await client.create(HOST, {
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'Host',
      metadata: { name },
      spec: {},
    });
});

afterAll(async () => {
  client?.close();
  await xenosd?.stop();
  if (xenosd) removeDataDir(xenosd.dataDir);
});

const spec = async (name: string) => (await client.get(HOST, name)).spec;

describe('cordon and uncordon', () => {
  it('set and clear spec.unschedulable, saying what changed', async () => {
    let r = await xenosctlInProcess(['cordon', 'cordon-a', 'cordon-b'], env);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'host/cordon-a cordoned\nhost/cordon-b cordoned\n', '']);
    expect(await spec('cordon-a')).toMatchObject({ unschedulable: true });
    expect(await spec('cordon-b')).toMatchObject({ unschedulable: true });

    r = await xenosctlInProcess(['cordon', 'cordon-a'], env);
    expect([r.code, r.stdout]).toEqual([0, 'host/cordon-a already cordoned\n']);

    const table = await xenosctlInProcess(['get', 'hosts', 'cordon-a', 'cordon-b'], env);
    expect(table.stdout).toMatch(/^NAME\s+READY\s+DRIVER\s+UNSCHEDULABLE/);
    expect(table.stdout).toMatch(/^cordon-a\s+.*\btrue\b/m);

    r = await xenosctlInProcess(['uncordon', 'cordon-a'], env);
    expect([r.code, r.stdout]).toEqual([0, 'host/cordon-a uncordoned\n']);
    expect(await spec('cordon-a')).toMatchObject({ unschedulable: false });
    r = await xenosctlInProcess(['uncordon', 'cordon-a'], env);
    expect([r.code, r.stdout]).toEqual([0, 'host/cordon-a already uncordoned\n']);
  });

  it('uncordon clears spec.drain too, which keeps a host unschedulable on its own', async () => {
    await client.patch(HOST, 'cordon-b', { spec: { unschedulable: false, drain: true } });
    let r = await xenosctlInProcess(['cordon', 'cordon-b'], env);
    expect(r.stdout).toBe('host/cordon-b already cordoned\n');
    r = await xenosctlInProcess(['uncordon', 'cordon-b'], env);
    expect([r.code, r.stdout]).toEqual([0, 'host/cordon-b uncordoned\n']);
    expect(await spec('cordon-b')).toMatchObject({ unschedulable: false, drain: false });
  });

  it('refuses a host that does not exist, and changes none of the others named', async () => {
    for (const verb of ['cordon', 'uncordon', 'drain']) {
      const r = await xenosctlInProcess(
        [verb, ...(verb === 'drain' ? [] : ['cordon-a']), 'no-such-host'],
        env,
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `error: host "no-such-host" not found (xenosctl get hosts lists the cluster's hosts)\n`,
      );
      expect(r.stdout).toBe('');
    }
    expect(await spec('cordon-a')).toMatchObject({ unschedulable: false });
  });
});

describe('drain of a host whose xenosd is not running', () => {
  it('gives up at --timeout, naming each instance left and its migration, which it keeps', async () => {
    const ns = 'drain-down';
    await client.create(
      SERVICE_TEMPLATE,
      {
        apiVersion: 'xenos.io/v1alpha1',
        kind: 'ServiceTemplate',
        metadata: { name: 'web', namespace: ns },
        spec: { image: { path: '/srv/images/web' }, process: { command: ['sleep', '1000'] } },
      },
      { namespace: ns },
    );
    await client.create(
      SERVICE_INSTANCE,
      {
        apiVersion: 'xenos.io/v1alpha1',
        kind: 'ServiceInstance',
        metadata: { name: 'stuck-1', namespace: ns },
        spec: { templateRef: { name: 'web' }, host: 'cordon-b' },
      },
      { namespace: ns },
    );
    const r = await xenosctlInProcess(['drain', 'cordon-b', '--timeout', '2s', '--mode', 'cold'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('host/cordon-b cordoned\n');
    expect(r.stderr).toMatch(
      new RegExp(
        `^error: 1 of 1 instance could not move off host cordon-b; it stays cordoned\n  ${ns}/stuck-1: not moved within --timeout 2s: Pending \\(servicemigration ${ns}/stuck-1-drain-[a-z0-9]+ goes on until its spec.timeoutSeconds\\)$`,
        'm',
      ),
    );
    const kept = await client.list(SERVICE_MIGRATION, {
      namespace: ns,
      labelSelector: 'xenos.io/drain=cordon-b',
    });
    expect(kept.items.map((m) => m.spec)).toEqual([
      { instanceRef: { name: 'stuck-1' }, mode: 'Cold', timeoutSeconds: 2 },
    ]);
  });
});
