// The images of one host as a daemon part: what its image store holds (HeldImages: the complete images
// for Host.status.images, the Host rewritten when that set changes) and, when the host is in the p2p
// overlay, the image swarm on its libp2p node — serving chunks, announcing images in the DHT, and pulling
// missing ones for the controllers (the image source of templates, the `fetch` of instances) and for the
// pulls API. A single host without the overlay still reports its images and cannot pull.

import { HeldImages } from '../cluster/image-swarm/held-images.ts';
import { ImageSwarm } from '../cluster/image-swarm/image-swarm.ts';
import type { PullSources } from '../cluster/image-swarm/pull-api.ts';
import type { ImageProgress, ImageSource } from '../images/image-source.ts';
import type { ImageStore } from '../images/image-store.ts';
import type { Logger } from '../log/logger.ts';
import type { HostMetrics } from '../metrics/host-metrics.ts';
import type { HostImage } from '../model/host.ts';
import type { XenosNode } from '../p2p/node.ts';
import type { Store } from '../store/store.ts';
import type { Service } from './daemon.ts';

export interface HostImagesComponents {
  images: ImageStore;
  /** Read at start(): the replicated store, the p2p node (absent without --p2p), the liveness view. */
  store: () => Store;
  node: () => XenosNode | undefined;
  isLive: (host: string) => boolean;
  /** Rewrites this host's Host object (its images changed). */
  refreshHost: () => void;
  logger: Logger;
  /** Image bytes pulled and served, and refused requests, are read from here at each scrape. */
  metrics?: HostMetrics;
}

export interface HostImagesInit {
  hostName: string;
  /** `--image-upload-rate`, `--image-download-rate` (bytes a second). */
  uploadRate?: number;
  downloadRate?: number;
}

export class HostImages implements Service {
  readonly held: HeldImages;
  readonly #c: HostImagesComponents;
  readonly #init: HostImagesInit;
  #swarm: ImageSwarm | undefined;
  #unlisten: (() => void) | undefined;

  constructor(components: HostImagesComponents, init: HostImagesInit) {
    this.#c = components;
    this.#init = init;
    this.held = new HeldImages({ images: components.images, log: components.logger.forComponent('images') });
    const m = components.metrics;
    m?.counterFrom(
      'xenos_image_pulled_bytes_total',
      'Image chunk bytes this host received from peers.',
      () => this.#swarm?.bytesPulled ?? 0,
    );
    m?.counterFrom(
      'xenos_image_served_bytes_total',
      'Image chunk bytes this host sent to peers.',
      () => this.#swarm?.bytesServed ?? 0,
    );
    m?.counterFrom(
      'xenos_image_chunks_declined_total',
      'Chunk requests this host, seeding an image it holds whole, declined in favour of chunks it had not sent yet.',
      () => this.#swarm?.server.declined ?? 0,
    );
  }

  /** The swarm, once started with the overlay. */
  get swarm(): ImageSwarm | undefined {
    return this.#swarm;
  }

  /** What Host.status.images says. */
  get complete(): HostImage[] {
    return this.held.complete;
  }

  async start(): Promise<void> {
    this.#unlisten = this.held.onChange(() => this.#c.refreshHost());
    await this.held.start();
    const node = this.#c.node();
    if (!node) return;
    this.#swarm = new ImageSwarm(
      {
        node,
        images: this.#c.images,
        store: this.#c.store(),
        isLive: this.#c.isLive,
        held: this.held,
        log: this.#c.logger.forComponent('image-swarm'),
      },
      { uploadRate: this.#init.uploadRate, downloadRate: this.#init.downloadRate },
    );
    this.#c.metrics?.refusals(this.#swarm.server.refusals);
    await this.#swarm.start();
  }

  async stop(): Promise<void> {
    this.#unlisten?.();
    await this.#swarm?.stop();
    this.#swarm = undefined;
    await this.held.stop();
  }

  /** The templates' image source: the swarm (pulls from peers); undefined on a single host. */
  source(): ImageSource | undefined {
    return this.#swarm;
  }

  /** The instances' fetch: start a pull (unless one runs or failed moments ago) and say how far it is. */
  fetch(digest: string): { progress?: ImageProgress; error?: Error } | undefined {
    const swarm = this.#swarm;
    if (!swarm) return undefined;
    swarm.prefetch(digest);
    return swarm.pulling(digest) ?? {};
  }

  /** What the pulls API reads. */
  pullSources(): PullSources {
    return {
      hostName: this.#init.hostName,
      held: async (digest) => {
        const image = await this.#c.images.get(digest);
        if (!image) return undefined;
        return { size: this.held.complete.find((i) => i.digest === digest)?.size ?? image.size };
      },
      swarm: this.#swarm,
    };
  }
}
