// The xenosd entry point: parse options, start the Daemon, print where the API is, and stop
// cleanly (exit 0) on SIGINT or SIGTERM. Mistakes in the command line exit 2 with one line.

import { Daemon } from './daemon.ts';
import { InstanceLogs } from './instance-logs.ts';
import { LocalControllers } from './local-controllers.ts';
import { parseOptions, UsageError } from './options.ts';

function fail(message: string, code: number): never {
  process.stderr.write(`xenosd: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let opts: ReturnType<typeof parseOptions>;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) fail(`${err.message} (see xenosd --help)`, 2);
    throw err;
  }
  if (!opts) return; // --help
  // Assigned before the daemon starts; hostFacts is only read once it runs.
  let controllers: LocalControllers | undefined;
  const logs = new InstanceLogs(
    {
      store: () => daemon.store,
      driver: () => controllers?.hostDriver,
      node: () => daemon.cluster.node,
      log: (msg) => process.stderr.write(`xenosd ${opts.hostName}: ${msg}\n`),
    },
    { hostName: opts.hostName },
  );
  const daemon = new Daemon({
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
    tls: opts.tlsSelfSigned
      ? 'self-signed'
      : opts.tlsCert && opts.tlsKey
        ? { cert: opts.tlsCert, key: opts.tlsKey }
        : undefined,
    hostFacts: () => {
      const driver = controllers?.driverName;
      return driver ? { driver, drivers: [driver] } : {};
    },
    cluster: {
      labels: opts.labels,
      hostTimeoutMs: opts.hostTimeoutMs,
      heartbeatIntervalMs: opts.heartbeatIntervalMs,
      maxInstances: opts.maxInstances,
      p2p: opts.p2p,
    },
  });
  controllers = new LocalControllers(
    { store: () => daemon.store, auth: () => daemon.auth, apiUrl: () => daemon.apiUrl },
    // Cluster placement (src/cluster/scheduler.ts) writes spec.host, also on a single host.
    { dataDir: opts.dataDir, hostName: opts.hostName, driver: opts.driver, placeUnplaced: false },
  );
  daemon.use(controllers);
  // After the controllers (the driver) and the cluster (the p2p node); stopped before them.
  daemon.use(logs);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`xenosd ${opts.hostName}: ${signal}, stopping\n`);
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

main().catch((err) => fail((err as Error).message, 1));
