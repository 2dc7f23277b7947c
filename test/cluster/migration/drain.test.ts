// xenosctl drain end to end with two real xenosd processes (process driver, so the moves are cold) and
// the real xenosctl binary: with the only other host cordoned, drain cordons the host, every move fails
// (no host can take the instances) and it exits 1 naming each instance and why, leaving them running where
// they were; once the other host is uncordoned, drain moves both instances there, they answer from it, and
// it says the host is drained; a third drain finds nothing left to move.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllCtl, xenosctl } from '../../cli/run-xenosctl.ts';
import { type ClusterHost, TestCluster, waitFor } from '../harness.ts';
import { expectDrained } from './drain-output.ts';

const API = '/apis/xenos.io/v1alpha1/namespaces/default';
const IMAGE = join(import.meta.dirname, '..', '..', '..', 'manifests', 'web', 'image');
const INSTANCES = ['drain-1', 'drain-2'];

describe('xenosctl drain between two real hosts', () => {
  const cluster = new TestCluster({ hostTimeout: '2s' });
  let a: ClusterHost;
  let env: Record<string, string>;

  beforeAll(async () => {
    [a] = await cluster.startHosts(['a', 'b']);
    env = { XENOS_SERVER: a.url, XENOS_TOKEN: a.token };
    const pushed = await xenosctl(['image', 'push', '-q', IMAGE], { env, timeoutMs: 60_000 });
    expect(pushed.code, pushed.stderr).toBe(0);
    await post('servicetemplates', {
      kind: 'ServiceTemplate',
      metadata: { name: 'web' },
      spec: {
        image: { digest: pushed.stdout.trim(), format: 'directory' },
        process: { command: ['node', 'server.mjs'] },
        ports: [{ name: 'http', port: 8080 }],
        healthCheck: { http: { port: 'http', path: '/healthz' }, periodSeconds: 1 },
      },
    });
    for (const name of INSTANCES)
      await post('serviceinstances', {
        kind: 'ServiceInstance',
        metadata: { name },
        spec: { templateRef: { name: 'web' }, host: 'a', driver: 'process' },
      });
    for (const name of INSTANCES) await answer(name, 'a');
  }, 180_000);

  afterAll(async () => {
    if (process.env.XENOS_TEST_DUMP)
      for (const h of cluster.hosts) console.log(`--- ${h.name}\n${h.stderr().slice(-6000)}`);
    killAllCtl();
    await cluster.cleanup();
  }, 90_000);

  async function post(plural: string, body: object) {
    const res = await a.api(`${API}/${plural}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'xenos.io/v1alpha1', ...body }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
  }

  /** The instance's answer, once host a's API says it is Ready on `host` and its endpoint answers. */
  async function answer(name: string, host: string): Promise<string> {
    return waitFor(
      async () => {
        const i = await cluster.json(a, `${API}/serviceinstances/${name}`);
        const ready = i.status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True';
        const ep = i.status?.endpoints?.[0];
        if (i.spec?.host !== host || i.status?.host !== host || !ready || !ep) return undefined;
        return (await fetch(ep.url ?? `http://${ep.address}:${ep.port}/`)).text();
      },
      `${name} answering on ${host}`,
      90_000,
    );
  }

  const drain = () => xenosctl(['drain', 'a', '--timeout', '3m'], { env, timeoutMs: 200_000 });

  it('with nowhere to go: cordons, fails every move with its reason, exits 1, and moves nothing', async () => {
    const cordoned = await xenosctl(['cordon', 'b'], { env });
    expect([cordoned.code, cordoned.stdout]).toEqual([0, 'host/b cordoned\n']);
    const r = await drain();
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe('host/a cordoned\n');
    expect(r.stderr).toContain('error: 2 of 2 instances could not move off host a; it stays cordoned');
    for (const name of INSTANCES) {
      expect(r.stderr).toMatch(
        new RegExp(`^ {2}default/${name}: NoTarget: .*no host can take the instance.*b is cordoned`, 'm'),
      );
      // The progress lines (stderr is not a terminal here: plain lines, no control characters).
      expect(r.stderr).toMatch(new RegExp(`^default/${name}\\s+Failed: NoTarget`, 'm'));
    }
    expect(r.stderr).not.toContain('\x1b');
    const hostA = await cluster.json(a, '/apis/xenos.io/v1alpha1/hosts/a');
    expect(hostA.spec.unschedulable).toBe(true);
    for (const name of INSTANCES) expect(await answer(name, 'a')).toBe(`hello from ${name}\n`);
  }, 240_000);

  it('with room elsewhere: moves every instance off, each answering from its new host', async () => {
    const uncordoned = await xenosctl(['uncordon', 'b'], { env });
    expect(uncordoned.code, uncordoned.stderr).toBe(0);
    const r = await drain();
    expectDrained(r, { host: 'a', cordoned: 'already cordoned', moved: INSTANCES, to: 'b', mode: 'Cold' });
    for (const name of INSTANCES) {
      expect(await answer(name, 'b')).toBe(`hello from ${name}\n`);
    }
    // Every migration drain made is kept, labelled with the host it emptied: two failed, two succeeded.
    const kept = await cluster.json(a, `${API}/servicemigrations?labelSelector=xenos.io%2Fdrain%3Da`);
    expect(kept.items.map((m: any) => m.status?.phase).sort()).toEqual([
      'Failed',
      'Failed',
      'Succeeded',
      'Succeeded',
    ]);
    expect(kept.items.every((m: any) => m.spec.targetHost === undefined)).toBe(true);
  }, 240_000);

  it('finds nothing left to move on a drained host', async () => {
    const r = await drain();
    expect([r.code, r.stdout]).toEqual([
      0,
      'host/a already cordoned\nhost/a drained (no instances were bound to it)\n',
    ]);
  }, 60_000);
});
