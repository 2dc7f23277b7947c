// Membership on XenosNodes as xenosd wires it (src/p2p/membership/membership.ts): hosts find each other
// through the connections they make, with no explicit join; a host stopped and started again on its data
// dir (same peer id, a later incarnation) is dead and then alive again everywhere; confirm() — the
// verdict writer's own probe — answers for a live host and fails for a dead one.

import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Membership } from '../../../src/p2p/membership/membership.ts';
import { loadOrCreatePeerKey, PEER_KEY_FILE } from '../../../src/p2p/peer-key.ts';
import { peerSigner } from '../../../src/p2p/peer-signature.ts';
import { type TestHost, TestNet } from '../cluster.ts';

const HOST_TIMEOUT_MS = 5000;
let net: TestNet;
let running: Membership[] = [];

afterEach(async () => {
  for (const m of running) await m.stop();
  running = [];
  await net.cleanup();
});

async function membershipOf(host: TestHost): Promise<Membership> {
  const { privateKey } = await loadOrCreatePeerKey(join(host.dataDir, PEER_KEY_FILE));
  const m = new Membership(
    { node: host.node, signer: peerSigner(privateKey, host.node.peerId.toString()) },
    { hostTimeoutMs: HOST_TIMEOUT_MS },
  );
  await m.start();
  running.push(m);
  return m;
}

const views = (ms: Membership[], peer: string) => ms.map((m) => m.state(peer));

describe('Membership on xenos nodes', () => {
  it('joins through connections, sees a restarted host dead then alive again, and confirms by probing', async () => {
    net = new TestNet();
    const clusterKeyFile = await net.clusterKeyFile();
    const hosts = await net.startCluster(3, { clusterKeyFile });
    const ms = await Promise.all(hosts.map(membershipOf));
    for (const m of ms)
      await expect
        .poll(() => views(ms, m.self).filter((s) => s === 'alive').length, { timeout: 15_000 })
        .toBe(3);
    const [a, b, c] = ms;
    expect(await a.confirm(c.self)).toBe(true);

    // c goes away: dead at a and b within the host timeout, and a's own probe of it fails.
    const cHost = hosts[2];
    await c.stop();
    running = running.filter((m) => m !== c);
    await net.stopHost(cHost);
    const t0 = performance.now();
    await expect.poll(() => views([a, b], c.self), { timeout: HOST_TIMEOUT_MS }).toEqual(['dead', 'dead']);
    expect(performance.now() - t0).toBeLessThan(HOST_TIMEOUT_MS);
    expect(await a.confirm(c.self)).toBe(false);
    expect(a.isLive(c.self)).toBe(false);

    // c comes back on the same data dir: same peer id, a later incarnation; alive everywhere again.
    const back = await net.startHost({
      clusterKeyFile,
      dataDir: cHost.dataDir,
      bootstrap: hosts[0].node.multiaddrs,
    });
    const c2 = await membershipOf(back);
    expect(c2.self).toBe(c.self);
    expect(c2.swim.incarnation).toBeGreaterThan(c.swim.incarnation);
    await expect.poll(() => views([a, b], c.self), { timeout: 15_000 }).toEqual(['alive', 'alive']);
    await expect.poll(() => views([c2], a.self), { timeout: 15_000 }).toEqual(['alive']);
  });
});
