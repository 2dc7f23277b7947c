// xenosd as a process: parse options, start the Daemon, print where the API is, and stop cleanly (exit 0)
// on SIGINT or SIGTERM. Mistakes in the command line exit 2 with one line; a start that fails (the data
// dir held by another xenosd, a port in use) exits 1 with one line. main.ts runs it with no hooks; a
// test entry point runs the same daemon with a P2pConnectionHook (test/cluster/xenosd-with-faults.ts).

import { join } from 'node:path';
import { imageUploadRoute } from '../api/image-upload-route.ts';
import { pullRoute } from '../cluster/image-swarm/pull-api.ts';
import type { MigrationTransport } from '../drivers/driver.ts';
import { ImageStore } from '../images/image-store.ts';
import { UploadSessions } from '../images/upload-sessions.ts';
import { createLogger } from '../log/logger.ts';
import { HostMetrics } from '../metrics/host-metrics.ts';
import type { P2pConnectionHook } from './cluster-service.ts';
import { Daemon } from './daemon.ts';
import { GitOps } from './gitops/gitops.ts';
import { HostHealth } from './host-health.ts';
import { HostImages } from './host-images.ts';
import { InstanceLogs } from './instance-logs.ts';
import { LocalControllers } from './local-controllers.ts';
import { UsageError } from './option-values.ts';
import { parseOptions } from './options.ts';

/** What a test entry point may add to the daemon; xenosd itself passes nothing. */
export interface XenosdHooks {
  p2pConnectionHook?: P2pConnectionHook;
  /** Wraps each migration's transport (a test holds a transfer midway through it). */
  wrapMigrationTransport?: (transport: MigrationTransport) => MigrationTransport;
}

/** Runs xenosd with `argv` (without node and script) until a signal stops it; exits the process. */
export async function runXenosd(argv: string[], hooks: XenosdHooks = {}): Promise<void> {
  let opts: ReturnType<typeof parseOptions>;
  try {
    opts = parseOptions(argv);
  } catch (err) {
    if (err instanceof UsageError) fail(`${err.message} (see xenosd --help)`, 2);
    throw err;
  }
  if (!opts) return; // --help
  // The one root logger of this process; every part gets its component's child.
  const logger = createLogger({ level: opts.logLevel, base: { host: opts.hostName } });
  const log = logger.forComponent('xenosd');
  const warn = (msg: string) => log.warn(msg);
  // Which code runs: the build in dist/ or the TypeScript sources (bin/code.js chooses). At debug level:
  // a xenosd that cannot start says so in one line.
  const code = import.meta.url.includes('/dist/src/') ? 'dist' : 'sources';
  log.debug({ pid: process.pid, code, node: process.version }, `starting (code: ${code})`);
  if (opts.insecureHttp)
    warn(
      `--insecure-http: the API on ${opts.apiHost}:${opts.apiPort} is plain HTTP beyond loopback; bearer tokens cross the network in clear text (use --tls-self-signed or --tls-cert/--tls-key)`,
    );
  if (opts.heartbeatIntervalIgnored)
    warn(
      '--heartbeat-interval is ignored: hosts no longer write heartbeats; membership probes each other and derives its periods from --host-timeout',
    );
  if (opts.allowPrivateImageUrls)
    warn(
      "--allow-private-image-urls: template image URLs may reach this host's loopback and private networks",
    );
  if (opts.unsafeNoSandbox)
    warn(
      `--unsafe-no-sandbox: process-driver domains run WITHOUT a sandbox, as ${process.getuid?.() === 0 ? 'root' : "xenosd's user"}, ` +
        `and can read ${opts.dataDir} (the admin token, every instance token, the state) and every other domain. ` +
        'Never run code you do not trust this way.',
    );
  const health = new HostHealth(
    { log: logger.forComponent('host-health'), onChange: () => daemon.cluster.refreshHost() },
    { ...opts.health, dataDir: opts.dataDir },
  );
  // Assigned before the daemon starts; hostFacts is only read once it runs.
  let controllers: LocalControllers | undefined;
  const logs = new InstanceLogs(
    {
      store: () => daemon.store,
      driver: () => controllers?.hostDriver,
      node: () => daemon.cluster.node,
      log: logger.forComponent('instance-logs'),
    },
    { hostName: opts.hostName },
  );
  // One image store per host: the template controller imports into it, uploads finish into it.
  const imageStore = new ImageStore({ cacheDir: join(opts.dataDir, 'images') });
  const imageUploads = new UploadSessions(
    { store: imageStore },
    { maxBytes: opts.maxImageBytes, abandonAfterMs: opts.imageUploadTimeoutMs },
  );
  // What /metrics serves: every part below reports to it.
  const metrics = new HostMetrics();
  // What the store holds (Host.status.images) and, with --p2p, the swarm that serves and pulls images.
  const hostImages = new HostImages(
    {
      images: imageStore,
      store: () => daemon.store,
      node: () => daemon.cluster.node,
      isLive: (host) => daemon.cluster.liveness.isLive(host),
      refreshHost: () => daemon.cluster.refreshHost(),
      logger,
      metrics,
    },
    { hostName: opts.hostName, uploadRate: opts.imageUploadRate, downloadRate: opts.imageDownloadRate },
  );
  const daemon = new Daemon({
    logger,
    metrics,
    routes: [
      imageUploadRoute(() => ({ store: imageStore, uploads: imageUploads })),
      pullRoute(() => hostImages.pullSources()),
    ],
    logs,
    onFatal: (err) => {
      daemon
        .stop()
        .catch(() => {})
        .finally(() => fail(err.message, 1));
    },
    dataDir: opts.dataDir,
    hostName: opts.hostName,
    apiHost: opts.apiHost,
    apiPort: opts.apiPort,
    crdDir: opts.crdDir,
    eventTtlMs: opts.eventTtlMs,
    tls: opts.tlsSelfSigned
      ? 'self-signed'
      : opts.tlsCert && opts.tlsKey
        ? { cert: opts.tlsCert, key: opts.tlsKey }
        : undefined,
    hostFacts: () => {
      const driver = controllers?.driverName;
      const images = hostImages.complete;
      const conditions = [...(controllers?.hostConditions ?? []), ...health.conditions];
      return driver ? { driver, drivers: [driver], conditions, images } : { images, conditions };
    },
    cluster: {
      labels: opts.labels,
      hostTimeoutMs: opts.hostTimeoutMs,
      dhtRecordTtlMs: opts.dhtRecordTtlMs,
      maxInstances: opts.maxInstances,
      autoDrainAfterMs: opts.autoDrainAfterMs,
      p2p: opts.p2p && { ...opts.p2p, connectionHook: hooks.p2pConnectionHook },
    },
  });
  controllers = new LocalControllers(
    {
      store: () => daemon.store,
      auth: () => daemon.auth,
      apiUrl: () => daemon.apiUrl,
      logger,
      images: () => hostImages,
      cluster: () => ({
        placement: daemon.cluster.placement,
        liveness: daemon.cluster.liveness,
        node: daemon.cluster.node,
        caughtUp: (signal: AbortSignal) => daemon.cluster.caughtUp(signal),
      }),
      wrapMigrationTransport: hooks.wrapMigrationTransport,
      metrics,
    },
    // Cluster placement (src/cluster/scheduler.ts) writes spec.host, also on a single host.
    {
      dataDir: opts.dataDir,
      hostName: opts.hostName,
      driver: opts.driver,
      placeUnplaced: false,
      imageUrls: {
        allowPrivateAddresses: opts.allowPrivateImageUrls,
        allowedAddresses: opts.allowedImageAddresses,
        maxBytes: opts.maxImageBytes,
      },
      imageStore,
      imageUploads,
      imageGcGraceMs: opts.imageGcGraceMs,
      disabledControllers: opts.disabledControllers,
      isLive: (host) => daemon.cluster.liveness.isLive(host),
      sandbox: opts.unsafeNoSandbox
        ? false
        : { uidRange: opts.domainUids, readOnlyPaths: opts.domainReadOnlyPaths },
    },
  );
  // Before the controllers, which pull through it; after the cluster (the p2p node).
  daemon.use(health, 'host health');
  daemon.use(hostImages, 'images');
  daemon.use(controllers, 'controllers');
  // After the controllers (the driver) and the cluster (the p2p node); stopped before them.
  daemon.use(logs, 'instance logs');
  // Last: it applies through the API, and stops first.
  daemon.use(
    new GitOps(
      { apiUrl: () => daemon.apiUrl, validator: () => daemon.validator, images: imageStore, logger },
      { dataDir: opts.dataDir, hostName: opts.hostName, watch: opts.watch, intervalMs: opts.watchIntervalMs },
    ),
    'gitops',
  );
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, `${signal}, stopping`);
    daemon
      .stop()
      .then(() => process.exit(0))
      .catch((err) => fail(`could not stop cleanly: ${(err as Error).message}`, 1));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  try {
    await daemon.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const msg =
      e.code === 'EADDRINUSE'
        ? `cannot listen on ${opts.apiHost}:${opts.apiPort}: the address is in use; pick another with --api`
        : e.code === 'EACCES'
          ? `cannot listen on ${opts.apiHost}:${opts.apiPort} or write ${opts.dataDir}: permission denied`
          : e.message;
    await daemon.stop().catch(() => {});
    fail(msg, 1);
  }
  const node = daemon.cluster.node;
  if (node)
    process.stdout.write(`xenosd ${opts.hostName} p2p peer ${node.peerId} on ${node.multiaddrs.join(' ')}\n`);
  process.stdout.write(`xenosd ${opts.hostName} serving API on ${daemon.apiUrl}\n`);
}

export function fail(message: string, code: number): never {
  process.stderr.write(`xenosd: ${message}\n`);
  process.exit(code);
}
