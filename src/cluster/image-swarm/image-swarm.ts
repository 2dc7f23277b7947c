// The image swarm of one host: it serves the images this host holds (complete and partial) on
// `/xenos/image/1.0.0`, announces them in the DHT (as HeldImages sees them change), and gets missing images
// from peers. `ensure(digest)` is the image source the controllers use: the local
// image when this host holds it, else a swarm pull (one per digest however many callers wait for it; it
// stops when the last caller gives up, and resumes from what it wrote when asked again). `prefetch(digest)`
// starts a pull that runs until it ends or the host stops, for callers that look back later (`pulling`).

import type { ImportedImage } from '../../images/image-entry.ts';
import type { EnsureOptions, ImageSource } from '../../images/image-source.ts';
import type { ImageStore } from '../../images/image-store.ts';
import { type Log, silentLogger } from '../../log/logger.ts';
import type { ProtocolNode } from '../../p2p/protocol-node.ts';
import type { Store } from '../../store/store.ts';
import type { HeldImages } from './held-images.ts';
import { ImageHolders, imageCid, type ProviderLookup } from './holders.ts';
import { ImageClient } from './image-client.ts';
import { ImageServer } from './image-server.ts';
import { ImagePull, type PullInit, type PullProgress, type Strike } from './puller.ts';
import { TokenBucket } from './token-bucket.ts';

/** What the swarm uses of the libp2p node (XenosNode has it). */
export interface SwarmNode extends ProtocolNode, ProviderLookup {
  readonly peerId: { toString(): string };
  provide(
    cid: Awaited<ReturnType<typeof imageCid>>,
    options?: { signal?: AbortSignal; timeout?: number },
  ): Promise<void>;
  cancelProvide(cid: Awaited<ReturnType<typeof imageCid>>): Promise<void>;
}

export interface ImageSwarmComponents {
  node: SwarmNode;
  /** This host's image store. */
  images: Pick<ImageStore, 'get' | 'manifest' | 'haveBitmap' | 'readChunk' | 'beginPull' | 'seeds'>;
  /** The replicated store: Host.status.images of every host. */
  store: Pick<Store, 'list'>;
  /** Whether the membership sees a host alive. */
  isLive: (host: string) => boolean;
  /** What the image store holds (announced in the DHT as it changes). */
  held: HeldImages;
  log?: Log;
}

export interface ImageSwarmInit extends PullInit {
  /** Bytes a second this host sends to pullers at most (`--image-upload-rate`); none: no cap. */
  uploadRate?: number;
  /** Bytes a second this host pulls at most (`--image-download-rate`); none: no cap. */
  downloadRate?: number;
  /** Chunks served at once. Default 16. */
  maxServing?: number;
}

interface RunningPull {
  pull: ImagePull;
  promise: Promise<ImportedImage>;
  controller: AbortController;
  listeners: Set<(p: PullProgress) => void>;
  users: number;
  last?: PullProgress;
}

export class ImageSwarm implements ImageSource {
  readonly server: ImageServer;
  readonly #c: ImageSwarmComponents;
  readonly #init: ImageSwarmInit;
  readonly #log: Log;
  readonly #client: ImageClient;
  readonly #holders: ImageHolders;
  readonly #pulls = new Map<string, RunningPull>();
  readonly #failures = new Map<string, { error: Error; at: number }>();
  readonly #provided = new Set<string>();
  /** Bad chunks seen by recent pulls (the last 100), by sender. */
  readonly strikes: (Strike & { digest: string })[] = [];
  #unlisten: (() => void) | undefined;
  #announcing: Promise<void> = Promise.resolve();
  #stop = new AbortController();

  constructor(components: ImageSwarmComponents, init: ImageSwarmInit = {}) {
    this.#c = components;
    this.#init = init;
    this.#log = components.log ?? silentLogger.root;
    const self = components.node.peerId.toString();
    this.server = new ImageServer(
      {
        node: components.node,
        store: components.images,
        uploadBucket: init.uploadRate ? new TokenBucket({ rate: init.uploadRate }) : undefined,
        log: this.#log,
        onInterest: (digest, peer) => this.#pulls.get(digest)?.pull.noticed(peer),
      },
      { maxServing: init.maxServing },
    );
    this.#client = new ImageClient({
      node: components.node,
      downloadBucket: init.downloadRate ? new TokenBucket({ rate: init.downloadRate }) : undefined,
    });
    this.#holders = new ImageHolders({
      store: components.store,
      isLive: components.isLive,
      dht: components.node,
      self,
    });
  }

  /** Chunk bytes this host received from peers, and sent to them. */
  get bytesPulled(): number {
    return this.#client.bytesReceived;
  }

  get bytesServed(): number {
    return this.server.bytesSent;
  }

  async start(): Promise<void> {
    this.#stop = new AbortController();
    await this.server.start();
    this.#unlisten = this.#c.held.onChange(() => {
      this.#announcing = this.#announcing.then(() => this.#announceHeld());
    });
    this.#announcing = this.#announceHeld();
  }

  async stop(): Promise<void> {
    this.#unlisten?.();
    this.#stop.abort(new Error('image swarm stopping'));
    for (const p of this.#pulls.values()) p.controller.abort(this.#stop.signal.reason);
    await Promise.allSettled([...this.#pulls.values()].map((p) => p.promise));
    await this.#announcing.catch(() => {});
    await this.server.stop();
  }

  /** The local image, pulling it from peers when this host does not hold it. */
  async ensure(digest: string, options: EnsureOptions = {}): Promise<ImportedImage> {
    const local = await this.#c.images.get(digest);
    if (local) return local;
    const running = this.#pull(digest);
    const { onProgress, signal } = options;
    if (onProgress) {
      running.listeners.add(onProgress);
      if (running.last) onProgress(running.last);
    }
    running.users++;
    try {
      return await raceAbort(running.promise, signal);
    } finally {
      if (onProgress) running.listeners.delete(onProgress);
      // The last caller gone: stop (what was written stays, and a later ensure resumes from it).
      if (--running.users === 0)
        running.controller.abort(new Error(`nobody waits for image ${digest} any more`));
    }
  }

  /** Starts pulling `digest` unless it is here or being pulled; the pull runs until it ends or the host
   *  stops. A pull that failed is not started again within `retryMs`. */
  prefetch(digest: string, { retryMs = 10_000 } = {}): void {
    const failed = this.#failures.get(digest);
    if (this.#pulls.has(digest) || (failed && Date.now() - failed.at < retryMs)) return;
    this.ensure(digest, { signal: this.#stop.signal }).catch(() => {
      // remembered in #failures (pulling() says why)
    });
  }

  /** Where a pull of `digest` stands: its progress while it runs, or the error it last ended with. */
  pulling(digest: string): { progress?: PullProgress; error?: Error } | undefined {
    const running = this.#pulls.get(digest);
    if (running) return { progress: running.last };
    const failed = this.#failures.get(digest);
    return failed ? { error: failed.error } : undefined;
  }

  #pull(digest: string): RunningPull {
    const existing = this.#pulls.get(digest);
    if (existing) return existing;
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, this.#stop.signal]);
    const listeners = new Set<(p: PullProgress) => void>();
    const running = { controller, listeners, users: 0 } as RunningPull;
    running.pull = new ImagePull(
      {
        store: this.#c.images,
        client: this.#client,
        holders: this.#holders,
        announce: (d) => this.#provide(d),
        log: this.#log,
      },
      this.#init,
      digest,
      (p) => {
        running.last = p;
        for (const l of listeners) l(p);
      },
    );
    running.promise = running.pull
      .run(signal)
      .then(
        (image) => {
          this.#failures.delete(digest);
          this.#log.info({ digest }, `pulled image ${digest} (${image.size} bytes) from peers`);
          return image;
        },
        (err: Error) => {
          if (!signal.aborted) {
            this.#failures.set(digest, { error: err, at: Date.now() });
            this.#log.warn({ digest }, err.message);
          }
          throw err;
        },
      )
      .finally(() => {
        this.#pulls.delete(digest);
        this.strikes.push(...running.pull.strikes.map((s) => ({ ...s, digest })));
        this.strikes.splice(0, Math.max(0, this.strikes.length - 100));
        void this.#c.held.rescan();
      });
    running.promise.catch(() => {}); // every waiter sees it; nobody waiting is not an unhandled rejection
    this.#pulls.set(digest, running);
    return running;
  }

  /** Announces what the store holds and no longer re-provides what it dropped. */
  async #announceHeld(): Promise<void> {
    const serving = this.#c.held.serving;
    for (const digest of serving) if (!this.#provided.has(digest)) await this.#provide(digest);
    for (const digest of [...this.#provided]) {
      if (serving.has(digest) || this.#pulls.has(digest)) continue;
      this.#provided.delete(digest);
      await this.#c.node.cancelProvide(await imageCid(digest)).catch(() => {});
    }
  }

  async #provide(digest: string): Promise<void> {
    if (this.#provided.has(digest) || this.#stop.signal.aborted) return;
    this.#provided.add(digest);
    try {
      await this.#c.node.provide(await imageCid(digest), { signal: this.#stop.signal });
    } catch (err) {
      // Kept in #provided: kad-dht re-provides on its own schedule; the store's holders are known anyway.
      if (!this.#stop.signal.aborted)
        this.#log.warn({ err, digest }, `announcing image ${digest} in the DHT: ${(err as Error).message}`);
    }
  }
}

/** `promise`, or a rejection with the signal's reason when it aborts first. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
