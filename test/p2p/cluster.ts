// Test helpers for the p2p module: start real XenosNodes on 127.0.0.1 (port 0), each with its own temp
// DATA_DIR, sharing a cluster key; wait for conditions; stop and clean everything up.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openXenosNode, type XenosNode, type XenosNodeInit } from '../../src/p2p/node.ts';
import { createClusterKey } from '../../src/p2p/pnet/cluster-key.ts';
import { until } from '../wait.ts';

export interface TestHost {
  node: XenosNode;
  dataDir: string;
}

/** Tracks what a test started, so afterEach can stop it all. */
export class TestNet {
  readonly hosts: TestHost[] = [];
  readonly dirs: string[] = [];

  async tempDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'xenos-p2p-'));
    this.dirs.push(dir);
    return dir;
  }

  /** A fresh cluster key file in a temp dir. */
  async clusterKeyFile(): Promise<string> {
    const file = join(await this.tempDir(), 'swarm.key');
    await createClusterKey(file);
    return file;
  }

  /** Opens and starts a node; `dataDir` reuses a host's directory (restart). */
  async startHost(
    init: Partial<XenosNodeInit> & { clusterKeyFile: string | null; dataDir?: string },
  ): Promise<TestHost> {
    const dataDir = init.dataDir ?? (await this.tempDir());
    const node = await openXenosNode({ listen: '127.0.0.1:0', ...init, dataDir });
    await node.start();
    const host = { node, dataDir };
    this.hosts.push(host);
    return host;
  }

  /** n nodes with one cluster key, all bootstrapping from the first; resolves once each has a connection. */
  async startCluster(
    n: number,
    init: Partial<XenosNodeInit> & { clusterKeyFile?: string } = {},
  ): Promise<TestHost[]> {
    const clusterKeyFile = init.clusterKeyFile ?? (await this.clusterKeyFile());
    const seed = await this.startHost({ ...init, clusterKeyFile });
    const rest = await Promise.all(
      Array.from({ length: n - 1 }, () =>
        this.startHost({ ...init, clusterKeyFile, bootstrap: seed.node.multiaddrs }),
      ),
    );
    const all = [seed, ...rest];
    await waitFor(() => all.every((h) => h.node.connectedPeers().length > 0), 10_000, 'every node connected');
    return all;
  }

  async stopHost(host: TestHost): Promise<void> {
    await host.node.stop();
    this.hosts.splice(this.hosts.indexOf(host), 1);
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.hosts.splice(0).map((h) => h.node.stop()));
    await Promise.all(this.dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  }
}

/** test/wait.ts's until, in the argument order the p2p tests use. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  await until(what, cond, { timeoutMs });
}
