// Membership of REAL xenosd processes (SWIM over their p2p connections, no heartbeat rows), 5 hosts at
// --host-timeout 4s: an idle cluster writes no replicated row at all for 30 s (every host's store revision
// stands still); kill -9 of one host, and every other host's `xenosctl get hosts` shows it NotReady
// (reason HostUnreachable, naming who marked it) within the timeout + 1 s; restarted, it is Ready
// everywhere again, written by itself.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllCtl, xenosctl } from '../cli/run-xenosctl.ts';
import { type ClusterHost, TestCluster, waitFor } from './harness.ts';

const TIMEOUT_MS = 4000;
const cluster = new TestCluster({ hostTimeout: `${TIMEOUT_MS / 1000}s` });
let hosts: ClusterHost[];

beforeAll(async () => {
  hosts = await cluster.startHosts(['a', 'b', 'c', 'd', 'e']);
  for (const h of hosts)
    for (const name of ['a', 'b', 'c', 'd', 'e'])
      await waitFor(async () => (await cluster.hostReady(h, name)) === 'True', `${name} Ready on ${h.name}`);
}, 120_000);

afterAll(async () => {
  killAllCtl();
  await cluster.cleanup();
}, 60_000);

/** The host's store revision: every row written or applied there moves it. */
async function revision(h: ClusterHost): Promise<number> {
  return Number((await cluster.json(h, '/apis/xenos.io/v1alpha1/hosts')).metadata.resourceVersion);
}

function getHosts(h: ClusterHost) {
  return xenosctl(['get', 'hosts', '-o', 'wide'], { env: { XENOS_SERVER: h.url, XENOS_TOKEN: h.token } });
}

describe('membership of real xenosd processes', () => {
  it('an idle cluster writes no replicated rows', async () => {
    // Let what start-up wrote settle (a host writes its facts once its driver is chosen).
    let before = await Promise.all(hosts.map(revision));
    await waitFor(
      async () => {
        await new Promise((r) => setTimeout(r, 2000));
        const now = await Promise.all(hosts.map(revision));
        const still = now.every((r, i) => r === before[i]);
        before = now;
        return still;
      },
      'the cluster to settle after start-up',
      60_000,
    );
    await new Promise((r) => setTimeout(r, 30_000)); // the quiet being measured, not a wait for a state
    const after = await Promise.all(hosts.map(revision));
    expect(after).toEqual(before);
  }, 120_000);

  it('kill -9 of a host: every other host shows it NotReady within the timeout + 1 s; back, Ready again', async () => {
    const victim = hosts[2];
    const others = hosts.filter((h) => h !== victim);
    victim.child.kill('SIGKILL');
    const t0 = performance.now();
    await victim.exited;
    const seen = await Promise.all(
      others.map(async (h) => {
        await waitFor(
          async () => (await cluster.hostReady(h, victim.name)) === 'False',
          `${victim.name} NotReady on ${h.name}`,
        );
        return performance.now() - t0;
      }),
    );
    expect(Math.max(...seen)).toBeLessThan(TIMEOUT_MS + 1000);
    for (const h of others) {
      const out = await getHosts(h);
      expect(out.code).toBe(0);
      const line = out.stdout.split('\n').find((l) => l.startsWith(`${victim.name} `));
      expect(line).toMatch(/\bFalse\b.*\bHostUnreachable\b/);
    }
    const host = await cluster.json(others[0], `/apis/xenos.io/v1alpha1/hosts/${victim.name}`);
    const ready = host.status.conditions.find((c: { type: string }) => c.type === 'Ready');
    expect(ready.message).toMatch(/own probe .* got no answer; marked by [abde]$/);

    const back = await cluster.startHost(victim.name, { dataDir: victim.dataDir, join: hosts[0].addrs });
    for (const h of [...others, back])
      await waitFor(
        async () => (await cluster.hostReady(h, victim.name)) === 'True',
        `${victim.name} Ready again on ${h.name}`,
      );
    const again = await cluster.json(others[0], `/apis/xenos.io/v1alpha1/hosts/${victim.name}`);
    expect(again.status.conditions.find((c: { type: string }) => c.type === 'Ready').reason).toBe(
      'HostRunning',
    );
  }, 120_000);
});
