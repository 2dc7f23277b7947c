// The controllers of this host's own domains, as one part for Daemon.use(): the host's driver (selected
// once: auto → xen, qemu with KVM, else process), the ServiceTemplate controller importing images into
// DATA_DIR/images, the ServiceInstance controller running instances placed here, each domain with an
// instance-scoped notice-board token, and the ServiceMigration controller moving them between hosts (with
// the overlay: its streams served on /xenos/migrate/1.0.0). Built at start() because the store and tokens
// exist only then. Domains outlive a stop(): the next start adopts them.

import { join } from 'node:path';
import { ServiceDeploymentController } from '../../controllers/servicedeployment/controller.ts';
import type { DomainActorsInit } from '../../controllers/serviceinstance/actors.ts';
import { imageCache, ServiceInstanceController } from '../../controllers/serviceinstance/controller.ts';
import { TokenCredentials } from '../../controllers/serviceinstance/credentials.ts';
import { LayerCopies } from '../../controllers/serviceinstance/layer-copies.ts';
import type { MachineOptions } from '../../controllers/serviceinstance/machine-types.ts';
import { ServiceMigrationController } from '../../controllers/servicemigration/controller.ts';
import { ServiceTemplateController } from '../../controllers/servicetemplate/controller.ts';
import { ImageGc } from '../../controllers/servicetemplate/image-gc.ts';
import type { TokenAuthenticator } from '../api/auth.ts';
import { shouldHoldAhead } from '../cluster/image-distribution.ts';
import { LayerCopyReceiver } from '../cluster/layer-copies/copy-protocol.ts';
import { LayerCopyStore } from '../cluster/layer-copies/copy-store.ts';
import type { HostLiveness } from '../cluster/liveness.ts';
import { LocalMigrations } from '../cluster/migration/local-migrations.ts';
import { MigrationDialer } from '../cluster/migration/migration-dialer.ts';
import { MigrationReceiver } from '../cluster/migration/migration-receiver.ts';
import type { Placement } from '../cluster/placement.ts';
import { ownerOf } from '../cluster/rendezvous.ts';
import type { Driver, HostConditionFact, MigrationTransport } from '../drivers/driver.ts';
import { type DriverChoice, selectDriver } from '../drivers/registry.ts';
import type { SandboxInit } from '../drivers/sandbox/sandbox.ts';
import type { UrlPolicy } from '../images/download.ts';
import type { ImageProgress, ImageSource } from '../images/image-source.ts';
import { ImageStore } from '../images/image-store.ts';
import type { UploadSessions } from '../images/upload-sessions.ts';
import { type Logger, silentLogger } from '../log/logger.ts';
import type { HostMetrics } from '../metrics/host-metrics.ts';
import { HOST } from '../model/kinds.ts';
import type { ServiceTemplate } from '../model/service-template.ts';
import type { ProtocolNode } from '../p2p/protocol-node.ts';
import type { Store } from '../store/store.ts';

export interface LocalControllersComponents {
  /** Read at start(): the daemon's store and token authenticator exist only once it has started. */
  store: () => Store;
  auth: () => TokenAuthenticator;
  /** The API base URL services in domains are told (XENOS_API). */
  apiUrl: () => string;
  /** Gives the driver and each controller its component log. */
  logger?: Logger;
  /** Where images this host lacks come from (the image swarm), read at start(); absent: nowhere. */
  images?: () =>
    | {
        source(): ImageSource | undefined;
        fetch(digest: string): { progress?: ImageProgress; error?: Error } | undefined;
      }
    | undefined;
  /** Placement, liveness and the p2p node (absent without --p2p), for migrations; read at start(). */
  cluster?: () => {
    placement: Placement;
    liveness: HostLiveness;
    node?: ProtocolNode;
    /** Resolves once the store has caught up with the cluster (the instance controller's fence). */
    caughtUp?: (signal: AbortSignal) => Promise<void>;
  };
  /** The host's metrics: each controller reports its reconciles and queue there. */
  metrics?: HostMetrics;
  /** Tests only: wraps each migration's transport (to hold a transfer midway). */
  wrapMigrationTransport?: (transport: MigrationTransport) => MigrationTransport;
}

export interface LocalControllersInit {
  dataDir: string;
  hostName: string;
  driver?: DriverChoice;
  /** The process driver's sandbox options, or false for --unsafe-no-sandbox. */
  sandbox?: SandboxInit | false;
  /** See ServiceInstanceControllerInit.placeUnplaced: false when cluster placement writes spec.host. */
  placeUnplaced?: boolean;
  machine?: Partial<MachineOptions>;
  actors?: DomainActorsInit;
  /** What template image URLs may reach and fetch (`--allow-private-image-urls`, `--max-image-size`). */
  imageUrls?: UrlPolicy;
  /** The host's image store over DATA_DIR/images (shared with the upload API); default one of its own. */
  imageStore?: ImageStore;
  /** Abandoned uploads, swept by image garbage collection. */
  imageUploads?: UploadSessions;
  /** `--image-gc-grace`. */
  imageGcGraceMs?: number;
  /** `--controllers=-NAME`: the optional controllers this host leaves to the others. */
  disabledControllers?: readonly string[];
  /** The membership's view of which hosts are live: a template's image URL is downloaded by the first of
   *  them by rendezvous, the others pull the image from it. Absent: this host downloads every URL. */
  isLive?: (host: string) => boolean;
}

export class LocalControllers {
  private readonly components: LocalControllersComponents;
  private readonly init: LocalControllersInit;
  private driver?: Driver;
  private templates?: ServiceTemplateController;
  private instances?: ServiceInstanceController;
  private imageGc?: ImageGc;
  private migrationController?: ServiceMigrationController;
  private receiver?: MigrationReceiver;
  private deployments?: ServiceDeploymentController;
  private layerCopies?: LayerCopies;
  private copyReceiver?: LayerCopyReceiver;
  /** Why the drivers not chosen were not (for the Host object). */
  notChosen: string[] = [];

  constructor(components: LocalControllersComponents, init: LocalControllersInit) {
    this.components = components;
    this.init = init;
  }

  get driverName(): string | undefined {
    return this.driver?.name;
  }

  /** What the driver says about its domains for the Host object (sandboxed, limits enforced). */
  get hostConditions(): HostConditionFact[] {
    return this.driver?.hostConditions?.() ?? [];
  }

  /** The host's driver once started (instance logs read through it). */
  get hostDriver(): Driver | undefined {
    return this.driver;
  }

  async start(): Promise<void> {
    if (this.driver) return;
    const { dataDir, hostName } = this.init;
    const store = this.components.store();
    const logger = this.components.logger ?? silentLogger;
    const selection = await selectDriver(this.init.driver ?? 'auto', {
      dataDir,
      sandbox: this.init.sandbox,
      log: logger.forComponent('driver'),
    });
    this.notChosen = selection.notChosen;
    this.driver = selection.driver;
    await this.driver.start();
    const cacheDir = join(dataDir, 'images');
    const imageStore = this.init.imageStore ?? new ImageStore({ cacheDir });
    const fromPeers = this.components.images?.();
    const migrations = new LocalMigrations({ store }, { hostName });
    const cluster = this.components.cluster?.();
    if (cluster?.node) {
      // Failover's copies: made of this host's instances, kept of other hosts' (DATA_DIR/layer-copies).
      const copies = new LayerCopyStore({ dir: join(dataDir, 'layer-copies') });
      await copies.load();
      const layerCopies = new LayerCopies(
        {
          store,
          driver: this.driver,
          copies,
          placement: cluster.placement,
          node: cluster.node,
          enqueue: (key) => this.instances?.enqueue(key),
          log: logger.forComponent('layer-copies'),
        },
        { hostName },
      );
      this.layerCopies = layerCopies;
      this.copyReceiver = new LayerCopyReceiver({
        node: cluster.node,
        copies,
        authorize: (header, peer) => layerCopies.authorize(header, peer),
        log: logger.forComponent('layer-copies'),
      });
    }
    this.templates = new ServiceTemplateController(
      {
        store,
        images: fromPeers?.source(),
        log: logger.forComponent('servicetemplate-controller'),
        metrics: this.components.metrics,
      },
      {
        hostName,
        cacheDir,
        imageStore,
        urlPolicy: this.init.imageUrls,
        urlFetcher: this.init.isLive && urlFetcher(store, hostName, this.init.isLive),
        holdAhead: holdAhead(store, hostName, this.init.isLive),
      },
    );
    this.imageGc = new ImageGc(
      {
        store,
        images: imageStore,
        driver: this.driver,
        uploads: this.init.imageUploads,
        log: logger.forComponent('image-gc'),
      },
      { graceMs: this.init.imageGcGraceMs },
    );
    this.instances = new ServiceInstanceController(
      {
        store,
        driver: this.driver,
        images: {
          ...imageCache(cacheDir),
          ...(fromPeers ? { fetch: (digest: string) => fromPeers.fetch(digest) } : {}),
        },
        credentials: new TokenCredentials({ authenticator: this.components.auth() }, { dataDir }),
        migrations,
        caughtUp: cluster?.caughtUp,
        quorum: quorumOf(cluster?.liveness),
        layerCopies: this.layerCopies,
        log: logger.forComponent('serviceinstance-controller'),
        metrics: this.components.metrics,
      },
      {
        hostName,
        apiUrl: this.components.apiUrl(),
        placeUnplaced: this.init.placeUnplaced,
        machine: this.init.machine,
        actors: this.init.actors,
      },
    );
    this.templates.start();
    this.instances.start();
    this.imageGc.start();
    this.layerCopies?.start();
    await this.copyReceiver?.start();
    await this.startClusterControllers(store, migrations);
  }

  private async startClusterControllers(store: Store, migrations: LocalMigrations): Promise<void> {
    const cluster = this.components.cluster?.();
    if (!cluster || !this.driver) return;
    const { placement, liveness, node } = cluster;
    const wrap = this.components.wrapMigrationTransport ?? ((t: MigrationTransport) => t);
    const log = (this.components.logger ?? silentLogger).forComponent('servicemigration-controller');
    this.migrationController = new ServiceMigrationController(
      {
        store,
        driver: this.driver,
        migrations,
        placement,
        isLive: (h) => liveness.isLive(h),
        liveHosts: () => liveness.liveHosts(),
        transport: (m, target) => {
          if (!node) throw new Error('this host is not in a p2p overlay: it cannot reach another host');
          const ref = {
            namespace: m.metadata.namespace ?? 'default',
            name: m.metadata.name,
            uid: m.metadata.uid ?? '',
          };
          return wrap(
            new MigrationDialer({ node }, { peer: target.peerId, target: target.name, migration: ref }),
          );
        },
        log,
        metrics: this.components.metrics,
      },
      { hostName: this.init.hostName },
    );
    this.migrationController.start();
    // Every host runs it (unless told not to); each deployment is worked on by the live host that ranks
    // first for it.
    if (!this.init.disabledControllers?.includes('servicedeployment')) {
      this.deployments = new ServiceDeploymentController(
        {
          store,
          placement,
          liveness,
          log: (this.components.logger ?? silentLogger).forComponent('servicedeployment-controller'),
          metrics: this.components.metrics,
        },
        { hostName: this.init.hostName },
      );
      this.deployments.start();
    }
    if (node) {
      this.receiver = new MigrationReceiver({ node, ...this.migrationController.receiver, log });
      await this.receiver.start();
    }
  }

  async stop(): Promise<void> {
    await this.copyReceiver?.stop();
    this.layerCopies?.stop();
    this.copyReceiver = undefined;
    this.layerCopies = undefined;
    await this.deployments?.stop();
    this.deployments = undefined;
    await this.receiver?.stop();
    await this.migrationController?.stop();
    this.receiver = undefined;
    this.migrationController = undefined;
    await this.imageGc?.stop();
    this.imageGc = undefined;
    await this.instances?.stop();
    await this.templates?.stop();
    await this.driver?.stop();
    this.instances = undefined;
    this.templates = undefined;
    this.driver = undefined;
  }
}

/** Who counts as live for the image decisions: this host (it is the one asking) and the hosts the
 *  membership says are live; without a cluster, this host alone. */
function liveness(self: string, isLive: ((host: string) => boolean) | undefined): (host: string) => boolean {
  return (host) => host === self || (isLive?.(host) ?? false);
}

/** Whether this host pulls a template's image before an instance needs it (spec.distribution), decided
 *  from the replicated Hosts and the liveness view (src/cluster/image-distribution.ts). */
function holdAhead(
  store: Store,
  self: string,
  isLive: ((host: string) => boolean) | undefined,
): (template: ServiceTemplate) => boolean {
  const live = liveness(self, isLive);
  return (template) => shouldHoldAhead(template, self, store.list(HOST.kind).items, live).hold;
}

/** The live host that downloads a template's image URL: the first by rendezvous on the URL, so two
 *  templates with one URL share one download. */
function urlFetcher(
  store: Store,
  self: string,
  isLive: (host: string) => boolean,
): (template: ServiceTemplate) => string | undefined {
  const live = liveness(self, isLive);
  return (template) => {
    const url = template.spec?.image?.url;
    if (url === undefined) return undefined;
    const names = store
      .list(HOST.kind)
      .items.map((h) => h.metadata.name)
      .filter(live);
    // This host may have no Host object yet (just started): it still takes part.
    return ownerOf(`image-url\0${url}`, names.includes(self) ? names : [self, ...names]);
  };
}

/** The liveness view's majority, as the instance controller follows it (singletons run only with one). */
function quorumOf(liveness: HostLiveness | undefined) {
  return (
    liveness && {
      has: () => liveness.quorum(),
      onChange: (listener: () => void) => liveness.onChange(() => listener()),
    }
  );
}
