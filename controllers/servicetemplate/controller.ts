// The ServiceTemplate controller, the part local to one host: a template is Ready here when its image
// is in this host's content-addressed image cache, verified by digest. Its steps run in the Reconciler
// skeleton (src/reconcile/reconciler.ts): up to date at this generation with the digest still cached →
// done; otherwise import the image (a local file or directory — an absolute path, as the manifest loader
// resolves relative ones — or an http(s) URL) and queue status.digest, status.size, ImageReady and Ready,
// written once at the end. A long import first shows `Importing` (the skeleton's progressive status). An
// image whose digest differs from spec.image.digest can never become ready: terminal, Stalled, with both
// digests. A template whose image is named by digest alone (uploaded once, then held by peers) is Ready
// when this host or a live peer holds it; a host that should hold it ahead of need pulls it through its
// image source, showing `Pulling` with status.imagePull meanwhile. An image URL is downloaded by one host
// only (`urlFetcher`: the first live host by rendezvous on the URL); the others leave the template alone
// and pull the image from peers by the digest that host records.
// Over 400 lines because the three ways an image arrives (path, URL, digest from peers) share one reconcile
// and one status.

import { isAbsolute } from 'node:path';
import { type EventRecorder, eventRecorder } from '../../src/api/events.ts';
import type { UrlPolicy } from '../../src/images/download.ts';
import { ImageDigestMismatchError, InvalidDigestError } from '../../src/images/errors.ts';
import { type ImageSource, progressThrottle } from '../../src/images/image-source.ts';
import { ImageStore } from '../../src/images/image-store.ts';
import { cachedImage, type ImportedImage, importInto } from '../../src/images/import-image.ts';
import { type Log, silentLogger } from '../../src/log/logger.ts';
import type { ReconcileMetrics } from '../../src/metrics/host-metrics.ts';
import { HOST, SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import type { ServiceTemplate, ServiceTemplateStatus } from '../../src/model/service-template.ts';
import {
  type ConditionInput,
  getCondition,
  READY,
  setCondition,
  summariseReady,
} from '../../src/reconcile/conditions.ts';
import { Controller, type ReconcileResult } from '../../src/reconcile/controller.ts';
import { TerminalError } from '../../src/reconcile/errors.ts';
import type { RateLimiter } from '../../src/reconcile/rate-limiter.ts';
import { Reconciler, type ReconcilerInit, type Scope } from '../../src/reconcile/reconciler.ts';
import type { Store } from '../../src/store/store.ts';

export const IMAGE_READY = 'ImageReady';
const COMPONENT = 'servicetemplate-controller';
const DEFAULT_IMPORT_TIMEOUT_MS = 6 * 3600_000;
const DEFAULT_URL_RETRY_MS = 30_000;

export interface ServiceTemplateControllerComponents {
  store: Store;
  /** Gets an image named by digest onto this host (from peers, in a cluster); without it, a template
   *  that names its image by digest alone waits for the image to be imported here. */
  images?: ImageSource;
  log?: Log;
  /** Reconcile results, latency and queue depth go here (the host's /metrics). */
  metrics?: ReconcileMetrics;
}

export interface ServiceTemplateControllerInit {
  hostName: string;
  /** This host's content-addressed image cache (src/images). */
  cacheDir: string;
  /** The store over cacheDir, shared with the upload API and the swarm (one per host, so work on a
   *  digest is serialised); default a store of its own. */
  imageStore?: ImageStore;
  workers?: number;
  resyncMs?: number;
  /** The most one import may take, however it progresses (large images over slow links). Default 6 h;
   *  downloads end much sooner when they stall (see UrlPolicy). */
  importTimeoutMs?: number;
  /** What image URLs may reach and fetch: addresses, size cap, connect timeout, low-speed limit. */
  urlPolicy?: UrlPolicy;
  rateLimiter?: RateLimiter;
  /** Which host downloads a template's image URL: the others leave it to that host and pull the image
   *  from it (by the digest it writes to status.digest) when they need it. Default: this host. */
  urlFetcher?: (template: ServiceTemplate) => string | undefined;
  /** How often a host that is not the URL's fetcher looks again (the fetcher may have gone). Default 30 s. */
  urlRetryMs?: number;
  /** Whether this host should hold the template's image ahead of need (spec.distribution); default no:
   *  a host pulls an image when an instance placed on it needs it. */
  holdAhead?: (template: ServiceTemplate) => boolean;
}

function templateRef(t: ServiceTemplate): string {
  return `ServiceTemplate ${t.metadata.namespace ?? 'default'}/${t.metadata.name}`;
}

export class ServiceTemplateController {
  private readonly runner: Controller<typeof SERVICE_TEMPLATE.kind>;
  private readonly reconciler: Reconciler<typeof SERVICE_TEMPLATE.kind, TemplatePass>;

  constructor(components: ServiceTemplateControllerComponents, init: ServiceTemplateControllerInit) {
    const store = components.store;
    const log = components.log ?? silentLogger.root;
    const event = eventRecorder(store, { component: COMPONENT, host: init.hostName }, log);
    const withStore = { ...init, imageStore: init.imageStore ?? new ImageStore({ cacheDir: init.cacheDir }) };
    this.reconciler = new Reconciler(
      { store, log },
      templateSteps(withStore, event, store, components.images),
    );
    this.runner = new Controller(
      { store, log, metrics: components.metrics },
      {
        name: 'servicetemplate',
        kind: SERVICE_TEMPLATE.kind,
        workers: init.workers,
        resyncMs: init.resyncMs,
        rateLimiter: init.rateLimiter,
        // An import is bounded by its own progress checks and importTimeoutMs, not the default 2 min.
        reconcileTimeoutMs: init.importTimeoutMs ?? DEFAULT_IMPORT_TIMEOUT_MS,
        reconcile: (key, opts) => this.reconcile(key, opts),
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

  /** One pass over a template key (what the runner calls). */
  reconcile(key: string, opts: { signal: AbortSignal }): Promise<ReconcileResult | undefined> {
    return this.reconciler.reconcile(key, opts);
  }
}

/** What a pass's steps hand on to the later ones. */
interface TemplatePass {
  source?: string;
}

/** The steps of one template on this host: up to date → done; where the image comes from (terminal when
 *  there is nothing to import); the import, with its progress shown while it runs. */
function templateSteps(
  init: ServiceTemplateControllerInit,
  event: EventRecorder,
  store: Store,
  images: ImageSource | undefined,
): ReconcilerInit<typeof SERVICE_TEMPLATE.kind, TemplatePass> {
  const host = init.hostName;
  return {
    kind: SERVICE_TEMPLATE.kind,
    data: () => ({}),
    // A deleted template holds nothing on this host (the image cache is shared by digest).
    owns: (template) => !template.metadata.deletionTimestamp,
    steps: [
      {
        name: 'upToDate',
        run: async ({ object, generation }) => {
          const status = object.status ?? {};
          const current =
            status.digest &&
            status.observedGeneration === generation &&
            getCondition(status, IMAGE_READY)?.status === 'True' &&
            (await cachedImage(init.cacheDir, status.digest));
          return current ? { stop: true } : undefined;
        },
      },
      {
        // An image named by digest alone travels between hosts: pulled here when this host should hold it
        // ahead of need, else the template is ready once a live host holds it (instances pull it).
        name: 'fromPeers',
        run: (scope) => fromPeers(scope, { init, event, store, images }),
      },
      {
        name: 'source',
        run: ({ object, data }) => {
          const image = object.spec?.image ?? {};
          data.source = image.path ?? image.url;
          if (!data.source) {
            throw new TerminalError(
              'NoImageSource',
              `${templateRef(object)}: spec.image: set exactly one of path, url or digest`,
            );
          }
          // A URL is downloaded by one host (rendezvous over live hosts), then travels between hosts.
          const fetcher = image.url !== undefined ? init.urlFetcher?.(object) : undefined;
          if (fetcher !== undefined && fetcher !== host)
            return { stop: true, requeueAfterMs: init.urlRetryMs ?? DEFAULT_URL_RETRY_MS };
          if (image.path !== undefined && !isAbsolute(image.path)) {
            throw new TerminalError(
              'RelativeImagePath',
              `${templateRef(object)}: spec.image.path "${image.path}" is relative; apply the manifest from a file ` +
                `(xenosctl apply -f) so it is resolved against the manifest's directory, or give an absolute path`,
            );
          }
          return undefined;
        },
      },
      {
        name: 'import',
        run: async (scope) => {
          const { object: template, generation, signal } = scope;
          const image = template.spec?.image ?? {};
          const source = scope.data.source!;
          // After a failed attempt at this generation, keep saying why until an attempt succeeds.
          const last = getCondition(template.status, IMAGE_READY);
          if (!(template.status?.observedGeneration === generation && last?.reason === 'ImportFailed')) {
            scope.status((s) =>
              setImageReady(s, 'Importing', generation, {
                status: 'Unknown',
                reason: 'Importing',
                message: `importing ${source} on host ${host}`,
              }),
            );
            await scope.progress();
          }
          let imported: ImportedImage;
          try {
            imported = await importInto(
              init.imageStore ?? new ImageStore({ cacheDir: init.cacheDir }),
              image.path !== undefined ? { path: image.path } : { url: image.url },
              image.digest,
              { signal, url: init.urlPolicy },
            );
          } catch (err) {
            if (signal.aborted) throw err;
            if (err instanceof ImageDigestMismatchError) {
              throw mismatchError(template, source, err.expected, err.actual);
            }
            if (err instanceof InvalidDigestError) {
              throw new TerminalError(
                'InvalidDigest',
                `${templateRef(template)}: spec.image.digest: ${err.message}`,
              );
            }
            const message = err instanceof Error ? err.message : String(err);
            scope.status((s) =>
              setImageReady(s, 'Failed', generation, {
                status: 'False',
                reason: 'ImportFailed',
                message: `${templateRef(template)}: importing ${source}: ${message}`,
              }),
            );
            event(template, 'Warning', 'Failed', `Importing image ${source} failed: ${message}`);
            throw err;
          }
          if (image.digest && imported.digest !== image.digest) {
            throw mismatchError(template, source, image.digest, imported.digest);
          }
          scope.status((s) => {
            setImageReady(s, 'Ready', generation, {
              status: 'True',
              reason: 'Imported',
              message: `image ${imported.digest} (${imported.size} bytes) is on host ${host}`,
            });
            s.digest = imported.digest;
            s.size = imported.size;
          });
          event(
            template,
            'Normal',
            'Pulled',
            `Image ${imported.digest} (${imported.size} bytes) imported from ${source}`,
          );
          return undefined;
        },
      },
    ],
    failed: (s, failure) => {
      if (!failure.terminal) return;
      setImageReady(s, 'Failed', s.observedGeneration ?? 1, {
        status: 'False',
        reason: failure.reason,
        message: failure.message,
      });
    },
    summarise: (s, generation) =>
      summariseReady(s, generation, {
        dependsOn: [IMAGE_READY],
        readyReason: 'Ready',
        readyMessage: `the image is available to host ${host}`,
      }),
    event,
  };
}

function mismatchError(
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

/** The phase and the ImageReady condition, which always change together. */
function setImageReady(
  s: ServiceTemplateStatus,
  phase: 'Importing' | 'Pulling' | 'Pending' | 'Ready' | 'Failed',
  generation: number,
  condition: Omit<ConditionInput, 'type'>,
): void {
  s.phase = phase;
  setCondition(s, { type: IMAGE_READY, ...condition }, generation);
}

type TemplateScope = Scope<typeof SERVICE_TEMPLATE.kind, TemplatePass>;

/** How often a template whose image no live host holds looks again. */
const NO_HOLDER_RETRY_MS = 10_000;

/**
 * For a template whose image is named by digest alone (uploaded, or fetched from a URL by one host): when
 * this host should hold it ahead of need, pull it (Pulling, with status.imagePull) and be Ready once it is
 * here; otherwise Ready when a live host holds it (instances pull it where they run). Templates with a
 * path or URL go on to the import steps.
 */
async function fromPeers(
  scope: TemplateScope,
  c: { init: ServiceTemplateControllerInit; event: EventRecorder; store: Store; images?: ImageSource },
): Promise<{ stop: true; requeueAfterMs?: number } | undefined> {
  const { object: template, generation, signal } = scope;
  const image = template.spec?.image ?? {};
  const digest = image.digest;
  if (!digest || image.path !== undefined || image.url !== undefined) return undefined;
  const host = c.init.hostName;
  const local = await cachedImage(c.init.cacheDir, digest);
  if (local) {
    scope.status((s) =>
      ready(
        s,
        generation,
        local.digest,
        local.size,
        `image ${digest} (${local.size} bytes) is on host ${host}`,
      ),
    );
    return { stop: true };
  }
  if (c.images && c.init.holdAhead?.(template)) {
    const throttle = progressThrottle((p) => {
      scope.status((s) => {
        setImageReady(s, 'Pulling', generation, {
          status: 'Unknown',
          reason: 'Pulling',
          message: `pulling image ${digest} onto host ${host}: ${p.percent} % from ${p.holders} peers`,
        });
        s.imagePull = { ...p, host, updatedAt: new Date().toISOString() };
      });
      scope.progress().catch(() => {});
    });
    c.event(template, 'Normal', 'Pulling', `Pulling image ${digest} onto host ${host} ahead of need`);
    const got = await c.images.ensure(digest, { signal, onProgress: (p) => throttle.report(p) });
    scope.status((s) => {
      delete s.imagePull;
      ready(
        s,
        generation,
        got.digest,
        got.size,
        `image ${digest} (${got.size} bytes) was pulled onto host ${host}`,
      );
    });
    c.event(
      template,
      'Normal',
      'Pulled',
      `Image ${digest} (${got.size} bytes) pulled from peers onto host ${host}`,
    );
    return { stop: true };
  }
  const holders = holdersOf(c.store, digest);
  if (holders.length > 0) {
    scope.status((s) =>
      ready(
        s,
        generation,
        digest,
        undefined,
        `image ${digest} is held by ${holders.length} host(s) (${holders.slice(0, 5).join(', ')}); hosts pull it when they need it`,
      ),
    );
    return { stop: true };
  }
  scope.status((s) =>
    setImageReady(s, 'Pending', generation, {
      status: 'False',
      reason: 'NoHolder',
      message: `no live host holds image ${digest}; push it (xenosctl image push PATH) or apply the template from its path`,
    }),
  );
  return { stop: true, requeueAfterMs: NO_HOLDER_RETRY_MS };
}

/** The hosts that say they hold `digest` complete (Host.status.images) and are Ready. */
function holdersOf(store: Store, digest: string): string[] {
  return store
    .list(HOST.kind)
    .items.filter(
      (h) =>
        getCondition(h.status, READY)?.status === 'True' &&
        h.status?.images?.some((i) => i.digest === digest),
    )
    .map((h) => h.metadata.name)
    .sort();
}

function ready(
  s: ServiceTemplateStatus,
  generation: number,
  digest: string,
  size: number | undefined,
  message: string,
) {
  setImageReady(s, 'Ready', generation, { status: 'True', reason: 'Available', message });
  s.digest = digest;
  if (size !== undefined) s.size = size;
}
