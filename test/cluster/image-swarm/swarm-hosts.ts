// Test helpers for the image swarm over real libp2p: XenosNodes on 127.0.0.1 with one cluster key (the
// p2p tests' TestNet), each with a real ImageStore in its data dir and a real ImageServer on
// `/xenos/image/1.0.0`; a real in-memory store with the Host objects that say who holds what (as the Host
// controller writes them); and a pull of one image onto one host, as the swarm runs it (its server tells
// the host's running pull of an image whom it saw asking for it, as ImageSwarm does).

import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageHolders, imageCid } from '../../../src/cluster/image-swarm/holders.ts';
import { ImageClient } from '../../../src/cluster/image-swarm/image-client.ts';
import { ImageServer, type ImageServerInit } from '../../../src/cluster/image-swarm/image-server.ts';
import { ImagePull, type PullInit, type PullProgress } from '../../../src/cluster/image-swarm/puller.ts';
import { TokenBucket } from '../../../src/cluster/image-swarm/token-bucket.ts';
import { ImageStore } from '../../../src/images/image-store.ts';
import { importInto } from '../../../src/images/import-image.ts';
import { manifestDigest, parseManifest } from '../../../src/images/manifest.ts';
import type { HostImage } from '../../../src/model/host.ts';
import { openStore, type SqliteStore } from '../../../src/store/sqlite-store.ts';
import { type TestHost, TestNet } from '../../p2p/cluster.ts';

export const CHUNK = 64 * 1024;

export interface SwarmHost extends TestHost {
  name: string;
  images: ImageStore;
  server: ImageServer;
}

export class SwarmNet {
  readonly net = new TestNet();
  readonly hosts: SwarmHost[] = [];
  /** The pull running on each host (by name), told of the peers its server sees asking for its image. */
  readonly #pulling = new Map<string, ImagePull>();
  /** The replicated store as every host sees it: Host objects with peerId and images. */
  readonly store: SqliteStore = openStore({
    path: ':memory:',
    namespaced: (k) => k !== 'Host',
    writer: 'test',
  });

  /** n hosts joined to one another, each serving its image store. */
  async start(
    n: number,
    server: (i: number) => ImageServerInit & { uploadRate?: number } = () => ({}),
  ): Promise<SwarmHost[]> {
    const nodes = await this.net.startCluster(n);
    for (const [i, h] of nodes.entries()) {
      const images = new ImageStore({ cacheDir: join(h.dataDir, 'images'), chunkSize: CHUNK });
      const { uploadRate, ...init } = server(i);
      const name = `h${i}`;
      const s = new ImageServer(
        {
          node: h.node,
          store: images,
          uploadBucket: uploadRate ? new TokenBucket({ rate: uploadRate }) : undefined,
          onInterest: (digest, peer) => {
            const pull = this.#pulling.get(name);
            if (pull?.digest === digest) pull.noticed(peer);
          },
        },
        init,
      );
      await s.start();
      const host = { ...h, name, images, server: s };
      this.hosts.push(host);
      this.store.create({
        apiVersion: 'xenos.io/v1alpha1',
        kind: 'Host',
        metadata: { name: host.name },
        spec: {},
      });
    }
    // Every node knows every other (the DHT and direct dials need no bootstrap detour).
    for (const a of this.hosts)
      for (const b of this.hosts) if (a !== b) await a.node.dial(b.node.multiaddrs[0]);
    return this.hosts;
  }

  /** Writes Host.status of `host`: its peer id and the images it holds complete (the Host controller's job). */
  publish(host: SwarmHost, images: HostImage[]): void {
    const h = this.store.get({ kind: 'Host', namespace: '', name: host.name })!;
    this.store.update(
      {
        ...h,
        status: {
          peerId: host.node.peerId.toString(),
          images,
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'HostRunning',
              message: '',
              lastTransitionTime: new Date().toISOString(),
            },
          ],
        },
      },
      { subresource: 'status' },
    );
  }

  /** Imports `file` into `host` and says so in its Host object. */
  async seed(host: SwarmHost, file: string): Promise<HostImage> {
    const img = await importInto(host.images, { path: file }, undefined);
    const manifest = (await host.images.manifest(img.digest))!;
    const entry = {
      digest: img.digest,
      manifest: manifestDigest(manifest),
      size: parseManifest(manifest).size,
    };
    const listed = this.store.get({ kind: 'Host', namespace: '', name: host.name })?.status?.images ?? [];
    this.publish(host, [...listed, entry]);
    return entry;
  }

  /** A pull of `digest` onto `host`, as the swarm makes it. `announce: false`: the host never provides the
   *  image in the DHT while it pulls (other pullers can learn of it only from peer exchange). */
  pull(
    host: SwarmHost,
    digest: string,
    init: PullInit & { downloadRate?: number; announce?: boolean } = {},
    onProgress?: (p: PullProgress) => void,
  ): ImagePull {
    const self = host.node.peerId.toString();
    const { downloadRate, announce = true, ...pullInit } = init;
    const pull = new ImagePull(
      {
        store: host.images,
        client: new ImageClient({
          node: host.node,
          downloadBucket: downloadRate ? new TokenBucket({ rate: downloadRate }) : undefined,
        }),
        holders: new ImageHolders({ store: this.store, isLive: () => true, dht: host.node, self }),
        announce: async (d) => {
          if (announce) await host.node.provide(await imageCid(d), { timeout: 5000 });
        },
      },
      { refreshMs: 300, stallTimeoutMs: 15_000, ...pullInit },
      digest,
      onProgress,
    );
    this.#pulling.set(host.name, pull);
    return pull;
  }

  async stopHost(host: SwarmHost): Promise<void> {
    await host.server.stop();
    await this.net.stopHost(host);
  }

  async cleanup(): Promise<void> {
    for (const h of this.hosts.splice(0)) await h.server.stop().catch(() => {});
    await this.net.cleanup();
    this.store.close();
  }
}

/** A file of random bytes in `dir`, and its digest. */
export async function randomFile(
  dir: string,
  size: number,
): Promise<{ path: string; digest: string; bytes: Buffer }> {
  const bytes = randomBytes(size);
  const path = join(dir, `image-${size}.raw`);
  await writeFile(path, bytes);
  return { path, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, bytes };
}
