// Host identity at join, with real xenosd processes: a host name is bound to the key of the host that took it
// first. A second xenosd started with a name the cluster already has (the default name is the machine's
// hostname, so two on one machine collide) exits non-zero before it serves, naming the name and the peer that
// holds it; the holder and the rest of the cluster go on as before.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterHost, parked, SI, TestCluster, waitFor } from './harness.ts';

describe('host identity at join', () => {
  const cluster = new TestCluster({ hostTimeout: '3s' });
  let a: ClusterHost;
  let b: ClusterHost;

  beforeAll(async () => {
    [a, b] = await cluster.startHosts(['a', 'b']);
  }, 60_000);

  afterAll(async () => {
    await cluster.cleanup();
  }, 60_000);

  it('refuses a second host named like one in the cluster; the holder is unaffected', async () => {
    const started = Date.now();
    const attempt = cluster.startHost('a', { dataDir: join(cluster.root, 'a-again'), join: b.addrs });
    await expect(attempt).rejects.toThrow(/exited with 1/);
    const error = await attempt.catch((err: Error) => err.message);
    expect(error).toContain(`host name "a" is already held by peer ${a.peerId}`);
    expect(error).toContain('--host-name');
    expect(error).not.toMatch(/\n\s+at /); // a message for people, not a stack trace
    expect(Date.now() - started).toBeLessThan(20_000);
    // The cluster still has one "a", with its own key, writing and heard by b.
    for (const h of [a, b]) {
      expect(await cluster.hostNames(h)).toEqual(['a', 'b']);
      const host = await cluster.json(h, '/apis/xenos.io/v1alpha1/hosts/a');
      expect(host.status.peerId).toBe(a.peerId);
    }
    await cluster.json(a, SI, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(parked('written-on-a')),
    });
    await waitFor(async () => (await b.api(`${SI}/written-on-a`)).ok, "a's next write on b");
    expect(await cluster.hostReady(b, 'a')).toBe('True');
  }, 60_000);

  it('the refused host, restarted on the same data directory under a free name, joins', async () => {
    const c = await cluster.startHost('c', { dataDir: join(cluster.root, 'a-again'), join: b.addrs });
    for (const h of [a, b, c])
      await waitFor(
        async () => (await cluster.hostNames(h)).join() === 'a,b,c',
        `${h.name} listing a, b and c`,
      );
    const host = await cluster.json(a, '/apis/xenos.io/v1alpha1/hosts/c');
    expect(host.status.peerId).toBe(c.peerId);
    // None of its rows or replication messages were refused (its name is bound by its first write). Other
    // refusals may be logged in a join burst (a peer's membership messages over the rate limit) and are
    // not this test's concern.
    expect(c.stderr()).not.toMatch(/refused \(xenos_replication_/);
  }, 60_000);
});
