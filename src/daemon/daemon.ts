// One xenosd: takes the data dir's lock (data-dir-lock.ts) and makes the dir private (data-dir-modes.ts),
// opens the store at DATA_DIR/state.db, loads the kinds from crds/, sets up tokens and serves the API. Then the cluster part (src/cluster: membership, placement, and with `cluster.p2p`
// the libp2p node, replication, DHT status and discovery) starts, then the parts given to use()
// (controllers, drivers); they stop in the reverse order, before the API and the store. With
// `cluster.p2p` the store signs what this host writes and checks what peers send (its key is the
// host's libp2p key, DATA_DIR/p2p.key), and the node joins — checking that no other host has this
// host's name — before the API serves.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostFacts } from '../../controllers/host/controller.ts';
import { ApiResources } from '../api/api-resources.ts';
import { TokenAuthenticator } from '../api/auth.ts';
import { DEFAULT_EVENT_TTL_MS } from '../api/input-limits.ts';
import { loadKinds } from '../api/kinds.ts';
import type { LogSource } from '../api/log-subresource.ts';
import { type ApiRoute, ApiServer } from '../api/server.ts';
import { Validator } from '../api/validation.ts';
import { discoverRoute } from '../cluster/discover-api.ts';
import { type Logger, silentLogger } from '../log/logger.ts';
import { HostMetrics } from '../metrics/host-metrics.ts';
import { API_ADDR_FILE } from '../model/data-dir.ts';
import { EVENT, SERVICE_INSTANCE } from '../model/kinds.ts';
import { packageFile } from '../model/package-root.ts';
import type { RowAuthority } from '../store/row-authority.ts';
import { openStore, type SqliteStore } from '../store/sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { type ClusterInit, ClusterService } from './cluster-service.ts';
import { DataDirLock } from './data-dir-lock.ts';
import { secureDataDir } from './data-dir-modes.ts';
import { DaemonStopError } from './errors.ts';
import { clusterFigures, storeFigures } from './host-figures.ts';
import { metricsRoute } from './metrics-route.ts';
import { ensureSelfSignedCert } from './self-signed-cert.ts';

export interface DaemonInit {
  dataDir: string;
  hostName: string;
  apiHost?: string;
  apiPort?: number;
  crdDir?: string;
  /** PEM files, or 'self-signed' to make (once) and use DATA_DIR/tls.crt|key. Absent: plain HTTP. */
  tls?: { cert: string; key: string } | 'self-signed';
  /** Gives each part its component log (xenosd's root logger); default: nothing is logged. */
  logger?: Logger;
  /** Membership, placement and the p2p overlay (see ClusterInit); dataDir and hostName come from here. */
  cluster?: Omit<ClusterInit, 'dataDir' | 'hostName'>;
  /** What the Host object reports about drivers (the daemon's driver selection sets it). */
  hostFacts?: () => HostFacts;
  /** Where the API reads instance logs (see instance-logs.ts); absent: the log subresource answers 503. */
  logs?: LogSource;
  /** How long an Event lives after its last write; default DEFAULT_EVENT_TTL_MS (1 h). */
  eventTtlMs?: number;
  /** Routes served beside the resources (the image upload API), after the daemon's own. */
  routes?: ApiRoute[];
  /** Called when the host cannot go on after it started (its host name turned out to be another's). */
  onFatal?: (err: Error) => void;
  /** The host's metrics (served at /metrics), shared with the parts given to use(); default: its own. */
  metrics?: HostMetrics;
}

/** A part that runs for the daemon's life (controllers, drivers, the p2p node). */
export interface Service {
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}

const VERSION: string = JSON.parse(readFileSync(packageFile('package.json'), 'utf8')).version;

export class Daemon {
  readonly init: DaemonInit;
  #store?: SqliteStore;
  #validator?: Validator;
  #cluster?: ClusterService;
  #api?: ApiServer;
  #auth?: TokenAuthenticator;
  #resources?: ApiResources;
  #lock?: DataDirLock;
  readonly #services: { service: Service; name: string }[] = [];
  #started = false;
  #unwatchFigures?: () => void;
  /** What /metrics serves; the parts report to it. */
  readonly metrics: HostMetrics;

  constructor(init: DaemonInit) {
    this.init = init;
    this.metrics = init.metrics ?? new HostMetrics();
    clusterFigures(this.metrics, () => this.#cluster);
  }

  get store(): Store {
    if (!this.#store) throw new Error('xenosd is not started');
    return this.#store;
  }

  get validator(): Validator {
    if (!this.#validator) throw new Error('xenosd is not started');
    return this.#validator;
  }

  /** Membership, placement and (with p2p) the overlay; available once started. */
  get cluster(): ClusterService {
    if (!this.#cluster) throw new Error('xenosd is not started');
    return this.#cluster;
  }

  get auth(): TokenAuthenticator {
    if (!this.#auth) throw new Error('xenosd is not started');
    return this.#auth;
  }

  get resources(): ApiResources {
    if (!this.#resources) throw new Error('xenosd is not started');
    return this.#resources;
  }

  /** The API's base URL, e.g. http://127.0.0.1:7443. */
  get apiUrl(): string {
    if (!this.#api) throw new Error('xenosd is not started');
    return this.#api.url;
  }

  get version(): string {
    return VERSION;
  }

  /** Register a part to start after the store and API (and stop before them); `name` names it in errors. */
  use(service: Service, name = `part ${this.#services.length + 1}`): void {
    this.#services.push({ service, name });
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const { dataDir } = this.init;
    const logger = this.init.logger ?? silentLogger;
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // Nothing in the data dir is touched before the lock is ours (a refused second daemon changes nothing).
    this.#lock = DataDirLock.acquire(dataDir);
    secureDataDir(dataDir, {
      extraSecrets: [
        this.init.cluster?.p2p?.clusterKeyFile,
        typeof this.init.tls === 'object' ? this.init.tls.key : undefined,
      ].filter((f) => f !== undefined),
      log: logger.forComponent('data-dir'),
    });
    const kinds = loadKinds(this.init.crdDir);
    const resources = new ApiResources(kinds);
    this.#resources = resources;
    this.#store = openStore({
      path: join(dataDir, 'state.db'),
      writer: this.init.hostName,
      namespaced: (kind) => resources.namespaced(kind),
      ttlMs: { [EVENT.kind]: this.init.eventTtlMs ?? DEFAULT_EVENT_TTL_MS },
      authority: this.init.cluster?.p2p ? await rowAuthority(dataDir) : undefined,
      log: logger.forComponent('store'),
    });
    this.#unwatchFigures = storeFigures(this.metrics, this.#store, this.init.hostName);
    this.#auth = new TokenAuthenticator({ dataDir });
    this.#auth.ensureAdminToken(dataDir);
    const files =
      this.init.tls === 'self-signed'
        ? await ensureSelfSignedCert(dataDir, [this.init.hostName, this.init.apiHost ?? ''])
        : this.init.tls;
    const tls = files ? { cert: readFileSync(files.cert), key: readFileSync(files.key) } : undefined;
    this.#validator = new Validator(kinds);
    this.#cluster = new ClusterService(
      {
        store: this.#store,
        validator: this.#validator,
        facts: () => ({ apiUrl: this.#api?.url, version: VERSION, ...this.init.hostFacts?.() }),
        logger,
        onFatal: this.init.onFatal,
        metrics: this.metrics,
      },
      { ...this.init.cluster, dataDir, hostName: this.init.hostName },
    );
    await this.#cluster.join();
    const routes: ApiRoute[] = [
      discoverRoute(() => {
        const cluster = this.#cluster;
        const store = this.#store;
        if (!cluster || !store) return {};
        const local = { store, isLive: (host: string) => cluster.liveness.isLive(host) };
        return { local, overlay: cluster.overlay };
      }),
      metricsRoute(this.metrics),
      ...(this.init.routes ?? []),
    ];
    this.#api = new ApiServer(
      {
        store: this.#store,
        resources,
        validator: this.#validator,
        auth: this.#auth,
        logs: this.init.logs,
        metrics: this.metrics,
      },
      {
        host: this.init.apiHost,
        port: this.init.apiPort,
        tls,
        version: VERSION,
        log: logger.forComponent('api'),
        routes,
      },
    );
    await this.#api.start();
    writeFileSync(join(dataDir, API_ADDR_FILE), this.#api.url + '\n');
    await this.#cluster.start();
    for (const { service } of this.#services) await service.start();
    this.#cluster.refreshHost();
    // The kind created many at a time, compiled once start-up is done rather than on its first create.
    const validator = this.#validator;
    setImmediate(() => this.#started && validator.warm([SERVICE_INSTANCE.kind]));
  }

  /** Stop accepting requests, end watches, stop the parts, close the store. */
  /** Stops every part, in the reverse order of start, even when one fails to stop: the others still stop,
   *  the store is closed and the lock released. Then throws DaemonStopError naming every part that failed. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    const failures: { part: string; error: unknown }[] = [];
    const attempt = async (part: string, stop: () => Promise<void> | void) => {
      try {
        await stop();
      } catch (error) {
        failures.push({ part, error });
      }
    };
    for (const { service, name } of [...this.#services].reverse()) await attempt(name, () => service.stop());
    await attempt('cluster', () => this.#cluster?.stop());
    this.#cluster = undefined;
    await attempt('API server', () => this.#api?.stop());
    this.#api = undefined;
    // A daemon that never got the lock leaves the holder's files alone.
    if (this.#lock)
      await attempt('api.addr', () => rmSync(join(this.init.dataDir, API_ADDR_FILE), { force: true }));
    this.#unwatchFigures?.();
    this.#unwatchFigures = undefined;
    await attempt('store', () => this.#store?.close());
    this.#store = undefined;
    await attempt('data dir lock', () => this.#lock?.release());
    this.#lock = undefined;
    if (failures.length) throw new DaemonStopError(failures);
  }
}

/** The store's signer and write checks for a host in an overlay: its libp2p key and the cluster's policy. */
async function rowAuthority(dataDir: string): Promise<RowAuthority> {
  const { clusterRowAuthority, loadOrCreatePeerKey, PEER_KEY_FILE, peerIdFromPrivateKey } = await import(
    './overlay-parts.ts'
  );
  const { privateKey } = await loadOrCreatePeerKey(join(dataDir, PEER_KEY_FILE));
  return clusterRowAuthority(privateKey, peerIdFromPrivateKey(privateKey).toString());
}
