// End to end with three real xenosd processes joined over loopback: an instance applied on host A that
// only host B fits (hostSelector) is bound and run by B; host C, which runs nothing, discovers its endpoint
// from its replicated store (and, asked for the DHT path, through the DHT), and the endpoint answers. kill -9 of B: the others mark B NotReady, its instance Ready=Unknown, and its
// advertisement disappears from discovery; B restarted: Ready again, its domain adopted and rediscovered.

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllCtl } from '../cli/run-xenosctl.ts';
import { type ClusterHost, ctl, SI, TestCluster, waitFor } from './harness.ts';

const MANIFESTS = new URL('../../manifests/web/', import.meta.url).pathname;

async function discover(h: ClusterHost): Promise<any> {
  const r = await ctl(h, ['discover', 'web.http', '-o', 'json', '--timeout', '3s']);
  if (r.code !== 0) throw new Error(`xenosctl discover on ${h.name}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The discover API asked for the DHT path only. */
async function discoverFromDht(cluster: TestCluster, h: ClusterHost): Promise<any> {
  return cluster.json(
    h,
    '/apis/xenos.io/v1alpha1/namespaces/default/discover/web.http?from=dht&timeoutSeconds=3',
  );
}

describe('placement and discovery across three real hosts', () => {
  const cluster = new TestCluster({ hostTimeout: '2s' });
  const dir = mkdtempSync(join(tmpdir(), 'xenos-web-'));
  let a: ClusterHost;
  let b: ClusterHost;
  let c: ClusterHost;

  beforeAll(async () => {
    [a, b, c] = await cluster.startHosts(['a', 'b', 'c']);
    cpSync(MANIFESTS, dir, { recursive: true });
    const instance = readFileSync(join(dir, 'instance.yaml'), 'utf8');
    writeFileSync(join(dir, 'instance.yaml'), `${instance.trimEnd()}\n  hostSelector:\n    zone: b\n`);
  }, 60_000);

  afterAll(async () => {
    killAllCtl();
    await cluster.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('applied on A, runs on B, discovered from C from its store and through the DHT', async () => {
    const applied = await ctl(a, ['apply', '-f', dir]);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);

    const running = await waitFor(async () => {
      const i = await cluster.json(c, `${SI}/web-1`);
      const ready = i.status?.conditions?.find((x: any) => x.type === 'Ready')?.status === 'True';
      return ready && i.status?.host === 'b' ? i : undefined;
    }, 'web-1 Ready on host b, as host c sees it');
    expect(running.spec.host).toBe('b');

    // C runs nothing, and answers from its replicated store; asked for the DHT path, from B's signed record.
    const onC = await cluster.json(c, SI);
    expect(onC.items.every((i: any) => i.spec.host !== 'c')).toBe(true);
    const found = await waitFor(async () => {
      const d = await discover(c);
      return d.items.length > 0 ? d : undefined;
    }, 'discover web.http from host c');
    expect(found.source).toBe('store');
    expect(found.items).toHaveLength(1);
    expect(found.items[0]).toMatchObject({ instance: 'web-1', host: 'b', peerId: b.peerId });
    const viaDht = await waitFor(async () => {
      const d = await discoverFromDht(cluster, c);
      return d.items.length > 0 ? d : undefined;
    }, 'discover web.http from host c through the DHT');
    expect(viaDht.source).toBe('dht');
    expect(viaDht.items).toEqual(found.items);
    const url = found.items[0].endpoints[0] as string;
    expect(running.status.endpoints.map((e: any) => e.url ?? `${e.address}:${e.port}`)).toContain(url);
    const answer = await fetch(url);
    expect(answer.status).toBe(200);
    expect(await answer.text()).toContain('hello from xenos');
  }, 60_000);

  it('kill -9 of B: NotReady on A and C, and its advertisement disappears; back when B returns', async () => {
    b.child.kill('SIGKILL');
    await b.exited;
    for (const h of [a, c]) {
      await waitFor(
        async () => (await cluster.hostReady(h, 'b')) === 'False',
        `host b NotReady on ${h.name}`,
      );
    }
    const host = await cluster.json(a, '/apis/xenos.io/v1alpha1/hosts/b');
    const ready = host.status.conditions.find((x: any) => x.type === 'Ready');
    expect(ready.reason).toBe('HostUnreachable');
    expect(ready.message).toMatch(/declared it dead .*own probe .* got no answer; marked by [ac]/);
    await waitFor(async () => (await discover(c)).items.length === 0, 'web.http gone from discovery on c');
    // Its instance is not Ready anywhere: nobody can tell how it is.
    const instanceReady = async (h: typeof a) =>
      (
        await cluster.json(h, '/apis/xenos.io/v1alpha1/namespaces/default/serviceinstances/web-1')
      ).status?.conditions?.find((x: any) => x.type === 'Ready');
    for (const h of [a, c]) {
      const r = await waitFor(async () => {
        const got = await instanceReady(h);
        return got?.status === 'Unknown' ? got : undefined;
      }, `web-1 Ready=Unknown on ${h.name}`);
      expect(r).toMatchObject({
        reason: 'HostNotReady',
        message: expect.stringContaining('host b is NotReady'),
      });
    }

    b = await cluster.startHost('b', { dataDir: b.dataDir, join: a.addrs });
    for (const h of [a, c]) {
      await waitFor(
        async () => (await cluster.hostReady(h, 'b')) === 'True',
        `host b Ready again on ${h.name}`,
      );
    }
    const again = await waitFor(async () => {
      const d = await discover(a);
      return d.items.length > 0 ? d : undefined;
    }, 'web.http discovered again from a');
    expect(again.items[0]).toMatchObject({ instance: 'web-1', host: 'b' });
    // Adopted, not started twice: the same endpoint still answers, and b says it is Ready again.
    expect((await fetch(again.items[0].endpoints[0])).status).toBe(200);
    await waitFor(async () => (await instanceReady(a))?.status === 'True', 'web-1 Ready again on a');
  }, 60_000);
});
