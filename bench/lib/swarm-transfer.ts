// The swarm copy for bench/distribution: a real xenosd (with --p2p, one cluster key) in every network
// namespace, the image pushed once to the seed's API (`xenosctl image push`), then every other host asked
// at once to pull it (`POST /apis/images.xenos.io/v1/pulls`, what `xenosctl image pull --host` does) and
// each polled every 100 ms until it holds the image (checked by digest by its image store): the clock runs
// from the requests to the last host done. What the seed sent meanwhile is read from its /metrics. Each run pushes a fresh image, so no host holds it before.

import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ClusterHost } from '../../test/cluster/harness.ts';
import { type NetnsHost, type NetnsLab, startXenosdIn } from '../../test/cluster/netns.ts';

const run = promisify(execFile);
const XENOSCTL = join(import.meta.dirname, '..', '..', 'bin', 'xenosctl.js');
const PULLS = '/apis/images.xenos.io/v1/pulls';
const POLL_MS = 100;

interface PullState {
  done?: boolean;
  error?: { reason: string; message: string };
  percent?: number;
  holders?: number;
}

/** One pull across the hosts: the seconds until the last held the image, and the most peers any host
 *  said were sending to it at once (a swarm that works shows more than 1). */
export interface SwarmRun {
  seconds: number;
  maxHolders: number[];
  /** Chunk bytes the seed sent in this run (its `xenos_image_served_bytes_total`): the bound needs each
   *  byte to leave the seed once. */
  seedSent: number;
}

export class SwarmLab {
  readonly seed: ClusterHost;
  readonly hosts: ClusterHost[];

  private constructor(seed: ClusterHost, hosts: ClusterHost[]) {
    this.seed = seed;
    this.hosts = hosts;
  }

  /** xenosd in `seed`'s namespace, then in each of `others`' (joined to the seed), all Ready everywhere. */
  static async start(lab: NetnsLab, seed: NetnsHost, others: NetnsHost[], dir: string): Promise<SwarmLab> {
    const keyFile = join(dir, 'cluster.key');
    const common = ['--cluster-key', keyFile, '--host-timeout', '5s'];
    const start = async (h: NetnsHost, name: string, join_: string[]) => {
      const dataDir = join(dir, name);
      await mkdir(dataDir, { recursive: true });
      return startXenosdIn(lab, h, {
        name,
        dataDir,
        args: [...common, ...join_.flatMap((a) => ['--join', a])],
        timeoutMs: 60_000,
      });
    };
    const s = await start(seed, 'seed', []);
    const hosts: ClusterHost[] = [];
    try {
      for (const [i, h] of others.entries()) hosts.push(await start(h, `host-${i + 1}`, s.addrs));
      const lab_ = new SwarmLab(s, hosts);
      await lab_.#until(
        async () => {
          for (const h of [s, ...hosts]) {
            const list = (await (await h.api('/apis/xenos.io/v1alpha1/hosts')).json()) as {
              items: unknown[];
            };
            if (list.items.length < hosts.length + 1) return false;
          }
          return true;
        },
        'every host to see every other',
        120_000,
      );
      return lab_;
    } catch (err) {
      for (const h of [s, ...hosts]) await h.stop().catch(() => {});
      throw err;
    }
  }

  async stop(): Promise<void> {
    for (const h of [...this.hosts, this.seed]) await h.stop().catch(() => {});
  }

  /** Pushes `file` to the seed; resolves its digest once every host sees the seed hold it. */
  async push(file: string): Promise<string> {
    const { stdout } = await run(process.execPath, [XENOSCTL, 'image', 'push', '-q', file], {
      env: { ...process.env, XENOS_SERVER: this.seed.url, XENOS_TOKEN: this.seed.token },
      timeout: 600_000,
      maxBuffer: 1024 * 1024,
    });
    const digest = stdout.trim().split('\n').at(-1) ?? '';
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`image push printed no digest: ${stdout}`);
    await this.#until(
      async () => {
        for (const h of this.hosts) {
          const res = await h.api('/apis/xenos.io/v1alpha1/hosts/seed');
          const seed = (await res.json()) as { status?: { images?: { digest: string }[] } };
          if (!seed.status?.images?.some((i) => i.digest === digest)) return false;
        }
        return true;
      },
      'every host to see that the seed holds the image',
      60_000,
    );
    return digest;
  }

  /** Asks every host to pull `digest` at once; resolves when the last holds it. */
  async pullAll(digest: string, timeoutMs: number): Promise<SwarmRun> {
    const servedBefore = await this.#seedServed();
    const start = Date.now();
    const states = await Promise.all(this.hosts.map((h) => this.#call(h, 'POST', PULLS, { digest })));
    const doneAt = this.hosts.map((_, i) => (states[i].done ? Date.now() : undefined));
    const maxHolders = this.hosts.map(() => 0);
    const lastError: (string | undefined)[] = this.hosts.map(() => undefined);
    await this.#until(
      async () => {
        await Promise.all(
          this.hosts.map(async (h, i) => {
            if (doneAt[i] !== undefined) return;
            let s: PullState;
            try {
              s = await this.#call(h, 'GET', `${PULLS}/${digest}`);
            } catch (err) {
              // A dropped connection (the relay, a busy host) is asked again at the next poll; a pull that
              // failed says so in `error`, below.
              lastError[i] = (err as Error).message;
              return;
            }
            maxHolders[i] = Math.max(maxHolders[i], s.holders ?? 0);
            if (s.error) throw new Error(`${h.name} failed to pull: ${s.error.message} (${s.error.reason})`);
            if (s.done) doneAt[i] = Date.now();
          }),
        );
        return doneAt.every((t) => t !== undefined);
      },
      () =>
        `every host to hold the image (not yet: ${this.hosts
          .map((h, i) =>
            doneAt[i] === undefined ? `${h.name}${lastError[i] ? ` [${lastError[i]}]` : ''}` : '',
          )
          .filter(Boolean)
          .join(', ')})`,
      timeoutMs,
      true,
    );
    const seconds = (Math.max(...(doneAt as number[])) - start) / 1000;
    return { seconds, maxHolders, seedSent: (await this.#seedServed()) - servedBefore };
  }

  /** The seed's `xenos_image_served_bytes_total`. */
  async #seedServed(): Promise<number> {
    const text = await (await this.seed.api('/metrics')).text();
    const m = /^xenos_image_served_bytes_total(?:\{[^}]*\})? (\S+)$/m.exec(text);
    if (!m) throw new Error("the seed's /metrics has no xenos_image_served_bytes_total");
    return Number(m[1]);
  }

  async #call(h: ClusterHost, method: string, path: string, body?: unknown): Promise<PullState> {
    const res = await h.api(path, {
      method,
      ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    if (res.status >= 300)
      throw new Error(`${method} ${path} on ${h.name}: ${res.status} ${await res.text()}`);
    return (await res.json()) as PullState;
  }

  /** Polls `ok` until true; a throw is "not yet" unless `fatal` (then it ends the wait). */
  async #until(
    ok: () => Promise<boolean>,
    what: string | (() => string),
    timeoutMs: number,
    fatal = false,
  ): Promise<void> {
    const end = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      try {
        if (await ok()) return;
      } catch (err) {
        if (fatal) throw err;
        last = (err as Error).message;
      }
      if (Date.now() > end) {
        const text = typeof what === 'string' ? what : what();
        throw new Error(`timed out waiting for ${text}${last ? ` (last: ${last})` : ''}`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}
