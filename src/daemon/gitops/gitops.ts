// The GitOps part of xenosd (`--watch [NAME=]DIR`, repeatable): one ManifestSync per directory, started
// once the API serves (they apply through it, as the admin) and stopped before it. Its client talks to
// this very process: over TLS it does not check the certificate, which is this host's own.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Validator } from '../../api/validation.ts';
import { XenosClient } from '../../client/client.ts';
import type { ImageStore } from '../../images/image-store.ts';
import type { Logger } from '../../log/logger.ts';
import { ADMIN_TOKEN_FILE } from '../../model/data-dir.ts';
import type { Service } from '../daemon.ts';
import { ManifestSync } from './manifest-sync.ts';

export interface GitOpsComponents {
  /** Read at start(): the daemon's API URL and validator exist only once it serves. */
  apiUrl: () => string;
  validator: () => Validator;
  images: ImageStore;
  logger: Logger;
}

export interface GitOpsInit {
  dataDir: string;
  hostName: string;
  watch: { name: string; dir: string }[];
  intervalMs?: number;
}

export class GitOps implements Service {
  readonly #c: GitOpsComponents;
  readonly #init: GitOpsInit;
  #client: XenosClient | undefined;
  #syncs: ManifestSync[] = [];

  constructor(components: GitOpsComponents, init: GitOpsInit) {
    this.#c = components;
    this.#init = init;
  }

  /** The running sources (the tests trigger and read them). */
  get sources(): readonly ManifestSync[] {
    return this.#syncs;
  }

  async start(): Promise<void> {
    if (this.#init.watch.length === 0) return;
    const token = readFileSync(join(this.#init.dataDir, ADMIN_TOKEN_FILE), 'utf8').trim();
    const client = new XenosClient({
      server: this.#c.apiUrl(),
      token,
      userAgent: 'xenosd-gitops',
      insecureSkipTlsVerify: true,
    });
    this.#client = client;
    const log = this.#c.logger.forComponent('gitops');
    for (const { name, dir } of this.#init.watch) {
      const sync = new ManifestSync(
        { client, validator: this.#c.validator(), images: this.#c.images, log: log.child({ source: name }) },
        { hostName: this.#init.hostName, dir, name, intervalMs: this.#init.intervalMs },
      );
      this.#syncs.push(sync);
      await sync.start();
    }
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.#syncs.map((s) => s.stop()));
    this.#syncs = [];
    this.#client?.close();
    this.#client = undefined;
  }
}
