// A host that drains itself (xenosd --auto-drain), end to end on two real xenosd processes. Host a runs
// with a --health-command that fails while a file exists; it holds an instance (the same one the user
// applied, pinned to a by spec.host). The file appears: a's Host says HealthCheckFailing=True, and after
// --auto-drain-after a cordons itself (Draining, the annotation naming the condition) and moves the
// instance to b through a drain ServiceMigration (cold, the process driver's move), where it answers. The
// file goes: the condition clears on a, and a stays cordoned until an operator uncordons it.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import {
  answers,
  type ClusterHost,
  cleanUpAfterAll,
  ctl,
  endpointUrl,
  readyOf,
  SI,
  TestCluster,
  waitFor,
} from './harness.ts';
import { copyWebTemplate, webInstance } from './web-deployment.ts';

const HOSTS = '/apis/xenos.io/v1alpha1/hosts';
const SMIG = '/apis/xenos.io/v1alpha1/namespaces/default/servicemigrations';
const cluster = new TestCluster({ hostTimeout: '2s' });
const dir = mkdtempSync(join(tmpdir(), 'xenos-auto-drain-'));
const sick = join(dir, 'sick');
let a: ClusterHost;
let b: ClusterHost;

beforeAll(async () => {
  a = await cluster.startHost('a', {
    args: [
      '--auto-drain',
      '--auto-drain-after',
      '1s',
      '--health-interval',
      '300ms',
      '--health-command',
      `if [ -e ${sick} ]; then echo "disk errors on /dev/vdb"; exit 1; fi`,
    ],
  });
  b = await cluster.startHost('b', { join: a.addrs });
  await waitFor(async () => (await cluster.hostNames(b)).length === 2, 'b seeing both hosts');
  copyWebTemplate(join(dir, 'manifests'));
  writeFileSync(
    join(dir, 'manifests', 'master.yaml'),
    webInstance({ name: 'master', host: 'a', greeting: 'hello from the master' }),
  );
}, 60_000);

cleanUpAfterAll(cluster, dir);

const hostA = (via: ClusterHost) => cluster.json(via, `${HOSTS}/a`);
const condition = (h: any, type: string) => h.status?.conditions?.find((c: any) => c.type === type);

it('a host whose health check fails cordons itself and moves its instances off, then waits for an operator', async () => {
  const applied = await ctl(a, ['apply', '-f', join(dir, 'manifests')]);
  expect(applied.code, applied.stderr).toBe(0);
  await waitFor(
    async () => readyOf(await cluster.json(a, `${SI}/master`)) === 'True',
    'master Ready on a',
    60_000,
  );
  expect(condition(await hostA(b), 'HealthCheckFailing')).toMatchObject({ status: 'False' });
  expect((await hostA(a)).spec?.drain).toBeFalsy();

  writeFileSync(sick, '');
  const drained = await waitFor(
    async () => {
      const h = await hostA(b);
      return h.spec?.drain === true ? h : undefined;
    },
    'a draining itself, as b sees it',
    30_000,
  );
  expect(condition(drained, 'HealthCheckFailing')).toMatchObject({
    status: 'True',
    reason: 'HealthCommandFailed',
    message: expect.stringContaining('exit 1: disk errors on /dev/vdb'),
  });
  expect(drained.metadata.annotations['xenos.io/auto-drained']).toMatch(
    /^\S+Z HealthCheckFailing: --health-command .*disk errors/,
  );
  const moved = await waitFor(
    async () => {
      const i = await cluster.json(b, `${SI}/master`);
      return i.spec.host === 'b' && readyOf(i) === 'True' && i.status?.host === 'b' ? i : undefined;
    },
    'master moved to b and Ready there',
    90_000,
  );
  expect(await answers(endpointUrl(moved))).toBe(true);
  const migrations = await waitFor(
    async () => {
      const items = (await cluster.json(b, SMIG)).items;
      return items.every((m: any) => m.status?.phase === 'Succeeded') ? items : undefined;
    },
    'the drain migration Succeeded',
    15_000,
  );
  expect(migrations).toHaveLength(1);
  expect(migrations[0]).toMatchObject({
    metadata: { labels: { 'xenos.io/drain': 'a' } },
    spec: { instanceRef: { name: 'master' }, mode: 'Auto' },
    status: { phase: 'Succeeded', sourceHost: 'a', targetHost: 'b' },
  });
  expect((await hostA(a)).status.phase).toBe('Draining');
  expect(a.stderr()).toMatch(/host a drains itself: HealthCheckFailing for \d+ s/);

  // Healthy again: the condition clears, the host stays cordoned until uncordoned.
  rmSync(sick);
  await waitFor(
    async () => condition(await hostA(b), 'HealthCheckFailing')?.status === 'False',
    'HealthCheckFailing clearing',
    15_000,
  );
  expect((await hostA(b)).spec?.drain).toBe(true);
  const uncordoned = await ctl(a, ['uncordon', 'a']);
  expect(uncordoned.code, uncordoned.stderr).toBe(0);
  await waitFor(async () => (await hostA(b)).status?.phase === 'Ready', 'a Ready again', 15_000);
  expect((await hostA(a)).spec?.drain).toBeFalsy();
}, 180_000);
