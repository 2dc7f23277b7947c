// The ServiceTemplate controller, the part local to one host: a template is Ready here when its image
// is in this host's content-addressed image cache, verified by digest. Reconcile: load the template;
// if it is Ready at this generation and the cache still holds its digest, done; otherwise import the
// image (a local file or directory — an absolute path, as the manifest loader resolves relative ones —
// or an http(s) URL) and write status.digest, status.size, ImageReady and Ready. An image whose digest
// differs from spec.image.digest can never become ready: terminal, Stalled, with both digests.
// (Pulling chunks from peers that hold the image replaces the plain import in the swarm issue.)

import { isAbsolute } from 'node:path';
import { recordEvent } from '../../src/api/events.ts';
import type { UrlPolicy } from '../../src/images/download.ts';
import { ImageDigestMismatchError, InvalidDigestError } from '../../src/images/errors.ts';
import { cachedImage, type ImportedImage, importImage } from '../../src/images/import-image.ts';
import { type Log, silentLogger } from '../../src/log/logger.ts';
import { SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import type { ServiceTemplate, ServiceTemplateStatus } from '../../src/model/service-template.ts';
import {
  type ConditionInput,
  getCondition,
  markStalled,
  removeCondition,
  STALLED,
  setCondition,
  summariseReady,
} from '../../src/reconcile/conditions.ts';
import { Controller, type ReconcileResult } from '../../src/reconcile/controller.ts';
import { TerminalError } from '../../src/reconcile/errors.ts';
import { objectKey } from '../../src/reconcile/keys.ts';
import type { RateLimiter } from '../../src/reconcile/rate-limiter.ts';
import { updateStatus } from '../../src/reconcile/status.ts';
import type { Store } from '../../src/store/store.ts';

export const IMAGE_READY = 'ImageReady';
const COMPONENT = 'servicetemplate-controller';
const DEFAULT_IMPORT_TIMEOUT_MS = 6 * 3600_000;

export interface ServiceTemplateControllerComponents {
  store: Store;
  log?: Log;
}

export interface ServiceTemplateControllerInit {
  hostName: string;
  /** This host's content-addressed image cache (src/images). */
  cacheDir: string;
  workers?: number;
  resyncMs?: number;
  /** The most one import may take, however it progresses (large images over slow links). Default 6 h;
   *  downloads end much sooner when they stall (see UrlPolicy). */
  importTimeoutMs?: number;
  /** What image URLs may reach and fetch: addresses, size cap, connect timeout, low-speed limit. */
  urlPolicy?: UrlPolicy;
  rateLimiter?: RateLimiter;
}

function templateRef(t: ServiceTemplate): string {
  return `ServiceTemplate ${t.metadata.namespace ?? 'default'}/${t.metadata.name}`;
}

export class ServiceTemplateController {
  private readonly store: Store;
  private readonly log: Log;
  private readonly init: ServiceTemplateControllerInit;
  private readonly runner: Controller<typeof SERVICE_TEMPLATE.kind>;

  constructor(components: ServiceTemplateControllerComponents, init: ServiceTemplateControllerInit) {
    this.store = components.store;
    this.log = components.log ?? silentLogger.root;
    this.init = init;
    this.runner = new Controller(
      { store: this.store, log: this.log },
      {
        name: 'servicetemplate',
        kind: SERVICE_TEMPLATE.kind,
        workers: init.workers,
        resyncMs: init.resyncMs,
        rateLimiter: init.rateLimiter,
        // An import is bounded by its own progress checks and importTimeoutMs, not the default 2 min.
        reconcileTimeoutMs: init.importTimeoutMs ?? DEFAULT_IMPORT_TIMEOUT_MS,
        reconcile: (key, opts) => this.reconcile(key, opts),
        onTerminal: (key, err) => this.stalled(key, err),
        // Its own status writes must not wake it: a failing import waits out its backoff.
        ignoreStatusOnlyChanges: true,
      },
    );
  }

  start(): void {
    this.runner.start();
  }

  async stop(): Promise<void> {
    await this.runner.stop();
  }

  async reconcile(key: string, { signal }: { signal: AbortSignal }): Promise<ReconcileResult | undefined> {
    const template = this.store.get(objectKey(SERVICE_TEMPLATE.kind, key));
    if (!template || template.metadata.deletionTimestamp) return undefined;
    const generation = template.metadata.generation ?? 1;
    const status = template.status ?? {};
    const image = template.spec?.image ?? {};

    if (
      status.digest &&
      status.observedGeneration === generation &&
      getCondition(status, IMAGE_READY)?.status === 'True' &&
      (await cachedImage(this.init.cacheDir, status.digest))
    ) {
      return undefined;
    }

    const source = image.path ?? image.url;
    if (!source) {
      throw new TerminalError(
        'NoImageSource',
        `${templateRef(template)}: spec.image: set exactly one of path or url`,
      );
    }
    if (image.path !== undefined && !isAbsolute(image.path)) {
      throw new TerminalError(
        'RelativeImagePath',
        `${templateRef(template)}: spec.image.path "${image.path}" is relative; apply the manifest from a file ` +
          `(xenosctl apply -f) so it is resolved against the manifest's directory, or give an absolute path`,
      );
    }

    // After a failed attempt at this generation, keep saying why until an attempt succeeds.
    const last = getCondition(status, IMAGE_READY);
    if (!(status.observedGeneration === generation && last?.reason === 'ImportFailed')) {
      this.write(key, generation, (s) =>
        setImageReady(s, 'Importing', generation, {
          status: 'Unknown',
          reason: 'Importing',
          message: `importing ${source} on host ${this.init.hostName}`,
        }),
      );
    }
    let imported: ImportedImage;
    try {
      imported = await importImage(
        image.path !== undefined ? { path: image.path } : { url: image.url },
        image.digest,
        { cacheDir: this.init.cacheDir, signal, url: this.init.urlPolicy },
      );
    } catch (err) {
      if (signal.aborted) throw err;
      if (err instanceof ImageDigestMismatchError)
        throw this.mismatchError(template, source, err.expected, err.actual);
      if (err instanceof InvalidDigestError) {
        throw new TerminalError(
          'InvalidDigest',
          `${templateRef(template)}: spec.image.digest: ${err.message}`,
        );
      }
      const message = err instanceof Error ? err.message : String(err);
      this.write(key, generation, (s) =>
        setImageReady(s, 'Failed', generation, {
          status: 'False',
          reason: 'ImportFailed',
          message: `${templateRef(template)}: importing ${source}: ${message}`,
        }),
      );
      this.event(template, 'Warning', 'Failed', `Importing image ${source} failed: ${message}`);
      throw err;
    }
    if (image.digest && imported.digest !== image.digest) {
      throw this.mismatchError(template, source, image.digest, imported.digest);
    }
    this.write(key, generation, (s) => {
      setImageReady(s, 'Ready', generation, {
        status: 'True',
        reason: 'Imported',
        message: `image ${imported.digest} (${imported.size} bytes) is on host ${this.init.hostName}`,
      });
      s.digest = imported.digest;
      s.size = imported.size;
      removeCondition(s, STALLED);
    });
    this.event(
      template,
      'Normal',
      'Pulled',
      `Image ${imported.digest} (${imported.size} bytes) imported from ${source}`,
    );
    return undefined;
  }

  private mismatchError(
    template: ServiceTemplate,
    source: string,
    expected: string,
    found: string,
  ): TerminalError {
    return new TerminalError(
      'DigestMismatch',
      `${templateRef(template)}: spec.image.digest is ${expected} but the image at ${source} has digest ${found}; ` +
        `fix spec.image.digest or the image`,
    );
  }

  private stalled(key: string, err: TerminalError): void {
    const template = this.store.get(objectKey(SERVICE_TEMPLATE.kind, key));
    if (!template) return;
    const generation = template.metadata.generation ?? 1;
    this.write(key, generation, (s) => {
      setImageReady(s, 'Failed', generation, { status: 'False', reason: err.reason, message: err.message });
      markStalled(s, err.reason, err.message, generation);
    });
    this.event(template, 'Warning', err.reason, err.message);
  }

  private write(key: string, generation: number, mutate: (s: ServiceTemplateStatus) => void): void {
    updateStatus(this.store, objectKey(SERVICE_TEMPLATE.kind, key), (s) => {
      s.observedGeneration = generation;
      mutate(s);
      summariseReady(s, generation, {
        dependsOn: [IMAGE_READY],
        readyReason: 'Ready',
        readyMessage: `the image is on host ${this.init.hostName}`,
      });
    });
  }

  private event(
    template: ServiceTemplate,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): void {
    try {
      recordEvent(this.store, template, type, reason, message, {
        component: COMPONENT,
        host: this.init.hostName,
      });
    } catch (err) {
      this.log.warn({ err: err }, `recording event ${reason} for ${templateRef(template)} failed`);
    }
  }
}

/** The phase and the ImageReady condition, which always change together. */
function setImageReady(
  s: ServiceTemplateStatus,
  phase: 'Importing' | 'Ready' | 'Failed',
  generation: number,
  condition: Omit<ConditionInput, 'type'>,
): void {
  s.phase = phase;
  setCondition(s, { type: IMAGE_READY, ...condition }, generation);
}
