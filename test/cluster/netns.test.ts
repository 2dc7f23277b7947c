// The overlay across network namespaces, end to end: three real xenosd, each in its own Linux network
// namespace on a bridge (10.77.0.1-3, see netns.ts), host-2 and host-3 joining host-1 over that network.
// Every host sees all three Ready; an instance applied on host-1 and pinned to host-3 runs there (inside
// host-3's namespace) and `xenosctl discover` from host-2 returns it. Then a real partition: host-3's
// port on the bridge goes down, so every packet between it and the others is lost. Both sides mark the
// other NotReady and keep accepting writes; after the link comes back every host holds every
// acknowledged write and all three are Ready everywhere.
//
// Needs root and iproute2 (`ip netns`); skipped otherwise. CI runs as root.

import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllCtl, xenosctl } from '../cli/run-xenosctl.ts';
import { type ClusterHost, parked, SI, TestCluster, waitFor } from './harness.ts';
import { listNs, type NetnsHost, NetnsLab, NS_P2P_PORT, netnsUnavailable, startXenosdIn } from './netns.ts';

const UNAVAILABLE = netnsUnavailable();
const MANIFESTS = new URL('../../manifests/web/', import.meta.url).pathname;
const HOST_TIMEOUT = '3s';
const NAMES = ['host-1', 'host-2', 'host-3'];

describe.skipIf(UNAVAILABLE !== undefined)(
  `xenosd across network namespaces${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`,
  () => {
    const lab = new NetnsLab();
    const cluster = new TestCluster({ hostTimeout: HOST_TIMEOUT });
    const web = join(cluster.root, 'web');
    let nets: NetnsHost[];
    let h1: ClusterHost;
    let h2: ClusterHost;
    let h3: ClusterHost;

    const ctl = (h: ClusterHost, args: string[]) =>
      xenosctl(args, { env: { XENOS_SERVER: h.url, XENOS_TOKEN: h.token } });

    async function start(i: number, join_: string[]): Promise<ClusterHost> {
      const name = NAMES[i];
      const dataDir = join(cluster.root, name);
      mkdirSync(dataDir, { recursive: true });
      const h = await startXenosdIn(lab, nets[i], {
        name,
        dataDir,
        args: [
          '--cluster-key',
          cluster.keyFile,
          '--host-timeout',
          HOST_TIMEOUT,
          '--label',
          `zone=${name}`,
          ...join_.flatMap((a) => ['--join', a]),
        ],
      });
      cluster.hosts.push(h);
      return h;
    }

    async function create(h: ClusterHost, name: string): Promise<void> {
      const res = await h.api(SI, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(parked(name)),
      });
      expect(res.status, `create ${name} on ${h.name}: ${await res.clone().text()}`).toBe(201);
    }

    async function allReadyEverywhere(): Promise<void> {
      for (const h of [h1, h2, h3]) {
        for (const n of NAMES) {
          await waitFor(async () => (await cluster.hostReady(h, n)) === 'True', `${n} Ready on ${h.name}`);
        }
      }
    }

    beforeAll(async () => {
      nets = await lab.create(3);
      h1 = await start(0, []);
      // Join by the namespace address only: nothing on loopback could carry this.
      const seed = h1.addrs.filter((a) => a.startsWith(`/ip4/${nets[0].address}/tcp/${NS_P2P_PORT}/`));
      expect(seed, `host-1 listens on ${nets[0].address}: ${h1.addrs.join(' ')}`).toHaveLength(1);
      [h2, h3] = await Promise.all([start(1, seed), start(2, seed)]);

      cpSync(MANIFESTS, web, { recursive: true });
      const instance = readFileSync(join(web, 'instance.yaml'), 'utf8');
      writeFileSync(
        join(web, 'instance.yaml'),
        `${instance.trimEnd()}\n  hostSelector:\n    xenos.io/hostname: host-3\n`,
      );
    }, 60_000);

    afterAll(async () => {
      killAllCtl();
      try {
        if (nets?.[2]) await lab.setLink(nets[2], true).catch(() => {});
        await cluster.cleanup();
      } finally {
        await lab.destroy();
        rmSync(web, { recursive: true, force: true });
      }
      const left = (await listNs()).filter((ns) => ns.startsWith(`${lab.prefix}-`));
      expect(left, 'namespaces left behind').toEqual([]);
    }, 60_000);

    it('every host sees all three Host objects Ready, each at its namespace address', async () => {
      await allReadyEverywhere();
      const peers = await cluster.json(h2, '/apis/xenos.io/v1alpha1/hosts');
      const byName = new Map<string, any>(peers.items.map((x: any) => [x.metadata.name, x]));
      for (const [i, h] of [h1, h2, h3].entries()) {
        expect(JSON.stringify(byName.get(h.name)?.status)).toContain(
          `/ip4/${nets[i].address}/tcp/${NS_P2P_PORT}`,
        );
      }
    }, 30_000);

    it('applied on host-1, pinned to host-3, runs there and is discovered from host-2', async () => {
      const applied = await ctl(h1, ['apply', '-f', web]);
      expect(applied.stderr).toBe('');
      expect(applied.code).toBe(0);

      const running = await waitFor(
        async () => {
          const i = await cluster.json(h1, `${SI}/web-1`);
          const ready = i.status?.conditions?.find((x: any) => x.type === 'Ready')?.status === 'True';
          return ready && i.status?.host === 'host-3' ? i : undefined;
        },
        'web-1 Ready on host-3, as host-1 sees it',
        45_000,
      );
      expect(running.spec.host).toBe('host-3');

      const found = await waitFor(async () => {
        const r = await ctl(h2, ['discover', 'web.http', '-o', 'json', '--timeout', '3s']);
        if (r.code !== 0) throw new Error(`xenosctl discover on host-2: ${r.stderr}`);
        const d = JSON.parse(r.stdout);
        return d.items.length > 0 ? d : undefined;
      }, 'discover web.http from host-2');
      expect(found.items).toHaveLength(1);
      expect(found.items[0]).toMatchObject({ instance: 'web-1', host: 'host-3', peerId: h3.peerId });
      const url = found.items[0].endpoints[0] as string;
      // The domain runs in host-3's namespace: its endpoint answers there.
      const body = await lab.exec(nets[2].ns, process.execPath, [
        '-e',
        'fetch(process.argv[1]).then(async (r) => console.log(r.status, await r.text()))',
        url,
      ]);
      expect(body).toMatch(/^200 .*hello from xenos/);
    }, 60_000);

    it('a real partition of host-3: both sides write; after healing every acknowledged write is everywhere', async () => {
      await lab.setLink(nets[2], false);
      for (const h of [h1, h2]) {
        await waitFor(
          async () => (await cluster.hostReady(h, 'host-3')) === 'False',
          `host-3 NotReady on ${h.name}`,
        );
      }
      await waitFor(
        async () =>
          (await cluster.hostReady(h3, 'host-1')) === 'False' &&
          (await cluster.hostReady(h3, 'host-2')) === 'False',
        'host-1 and host-2 NotReady on host-3',
      );

      await create(h1, 'from-host-1');
      await create(h3, 'from-host-3');
      // The sides really are apart: neither has heard of the other's write.
      expect((await h3.api(`${SI}/from-host-1`)).status).toBe(404);
      expect((await h2.api(`${SI}/from-host-3`)).status).toBe(404);

      await lab.setLink(nets[2], true);
      const want = ['from-host-1', 'from-host-3', 'web-1'];
      for (const h of [h1, h2, h3]) {
        await waitFor(
          async () => {
            const list = await cluster.json(h, SI);
            return (
              JSON.stringify(list.items.map((i: any) => i.metadata.name).sort()) === JSON.stringify(want)
            );
          },
          `every acknowledged write on ${h.name}`,
          30_000,
        );
      }
      const views = await Promise.all(
        [h1, h2, h3].map(async (h) => {
          const list = await cluster.json(h, SI);
          return list.items.map((i: any) => [i.metadata.name, i.metadata.uid, i.spec]);
        }),
      );
      expect(views[1]).toEqual(views[0]);
      expect(views[2]).toEqual(views[0]);
      await allReadyEverywhere();
    }, 75_000);
  },
);
