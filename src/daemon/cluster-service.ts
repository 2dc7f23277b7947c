// The cluster part of one xenosd, started by the Daemon after its store and API: the Host controller and
// the liveness view, placement and the scheduler that binds unplaced instances, and — when the host
// joins a p2p overlay (`--p2p`) — the libp2p node (src/p2p), the membership protocol on it
// (src/p2p/membership: which hosts are alive, with no replicated heartbeat), state replication over it
// (src/store/replication), this host's status records and service advertisements in the DHT, and the
// discover API. Without `--p2p` the host is a cluster of one: Host object and placement still work,
// discovery answers 503. Tests that partition real hosts wire a P2pConnectionHook in (no flag
// of xenosd reaches it; see test/cluster/fault-injection.ts).
//
// With `--p2p`, join() runs first (the Daemon calls it before its API serves): it starts the node and
// asks the first peers it reaches which key this host's name is bound to, so a second host with the same
// name stops before it writes anything (HostNameTakenError) and the holder is unaffected.
// Over 400 lines because it is the one place the overlay's parts are made, started and stopped in order;
// each part's own logic lives in its own file.

import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { ConnectionProtector } from '@libp2p/interface';
import { HostController, type HostFacts } from '../../controllers/host/controller.ts';
import { validateEvent } from '../api/events.ts';
import type { Validator } from '../api/validation.ts';
import { HostLiveness } from '../cluster/liveness.ts';
import { Placement } from '../cluster/placement.ts';
import { Scheduler } from '../cluster/scheduler.ts';
import type { StatusPublisher } from '../cluster/status-publisher.ts';
import type { Log, Logger } from '../log/logger.ts';
import type { HostMetrics } from '../metrics/host-metrics.ts';
import { EVENT, HOST } from '../model/kinds.ts';
import type { XObject } from '../model/object.ts';
import type { Discovery } from '../p2p/discovery.ts';
import type { Membership } from '../p2p/membership/membership.ts';
import type { XenosNode } from '../p2p/node.ts';
import { HostNameTakenError } from '../store/errors.ts';
import type { Replicator } from '../store/replication/replicator.ts';
import type { SqliteStore } from '../store/sqlite-store.ts';

export interface ClusterComponents {
  store: SqliteStore;
  validator: Validator;
  /** Driver name, drivers, capabilities, API URL, version: read at every reconcile of this host's Host. */
  facts: () => HostFacts;
  /** Gives each part (p2p, replication, discovery, status, scheduler, host) its component log. */
  logger: Logger;
  /** Called when this host cannot go on (its name turned out to be another host's after it started). */
  onFatal?: (err: Error) => void;
  /** The host's metrics: the scheduler, the Host controller and the DHT report there, and the overlay's
   *  refusal counters are read from there (cluster-metrics.ts reads the rest at each scrape). */
  metrics?: HostMetrics;
}

export interface ClusterInit {
  dataDir: string;
  hostName: string;
  labels?: Record<string, string>;
  hostTimeoutMs?: number;
  /** Lifetime of this host's DHT records (default DHT_RECORD_TTL_MS). */
  dhtRecordTtlMs?: number;
  maxInstances?: number;
  /** --auto-drain: this host drains itself once its health has degraded this long (absent: never). */
  autoDrainAfterMs?: number;
  /** The overlay; absent: a single host. */
  p2p?: {
    listen: string;
    join?: string[];
    clusterKeyFile: string;
    /** Anti-entropy period of replication (ms). */
    syncIntervalMs?: number;
    /** A hook into this host's connections, for tests only (see P2pConnectionHook). */
    connectionHook?: P2pConnectionHook;
    /** How long join() waits for a first peer to check this host's name with (ms). Default 5 s. */
    nameCheckTimeoutMs?: number;
  };
}

/** Makes the connection protector (the cluster-key layer) from the cluster's pre-shared key. */
export type ProtectorFactory = (psk: Uint8Array) => () => ConnectionProtector;

/**
 * The one hook point into a host's p2p connections, for tests that cut real hosts apart (fault
 * injection) without root or network namespaces. `wrapProtector` wraps the cluster-key protector, the
 * first layer every inbound and outbound connection passes, so the hook can refuse a connection before
 * anything above it sees a byte; `start` gets the running node (to close or redial connections) and
 * `stop` ends the hook before the node stops. xenosd itself never sets it: only a test entry point
 * that starts the same daemon does.
 */
export interface P2pConnectionHook {
  wrapProtector(make: ProtectorFactory): ProtectorFactory;
  start(node: XenosNode): Promise<void>;
  stop(): void;
}

/** A row from a peer: CRD kinds against their schema (spec and status); core v1 Events (which the API
 *  also stores) by the same rule the API holds them to (validateEvent); anything else is refused. */
function validateReplicated(validator: Validator, obj: XObject): { path: string; message: string }[] {
  if (validator.kindOf(obj) == null) {
    const event =
      obj.kind === EVENT.kind &&
      obj.apiVersion === EVENT.apiVersion &&
      typeof obj.metadata?.name === 'string';
    return event
      ? validateEvent(obj)
      : [{ path: 'kind', message: `${obj.apiVersion}/${obj.kind} is not a kind this host serves` }];
  }
  return [
    ...validator.validate(structuredClone(obj)),
    ...validator.validate(structuredClone(obj), { subresource: 'status' }),
  ];
}

/** Peer ids of the members alive or suspect: replication pushes each write to all of them. */
function liveMembers(membership: Membership): string[] {
  return membership
    .members()
    .filter((m) => m.state === 'alive' || m.state === 'suspect')
    .map((m) => m.peer);
}

/** How long this host's DHT status and instance records stay valid (republished at half of it). */
export const DHT_RECORD_TTL_MS = 10 * 60_000;
export class ClusterService {
  readonly liveness: HostLiveness;
  readonly placement: Placement;
  readonly #components: ClusterComponents;
  readonly #init: ClusterInit;
  readonly #hosts: HostController;
  readonly #scheduler: Scheduler;
  #node?: XenosNode;
  #membership?: Membership;
  #discovery?: Discovery;
  #replicator?: Replicator;
  #replicationTransport?: { bytesSent: number; bytesReceived: number };
  #publisher?: StatusPublisher;
  #hook?: P2pConnectionHook;
  #joined = false;
  #started = false;

  readonly #log: Log;

  constructor(components: ClusterComponents, init: ClusterInit) {
    this.#components = components;
    this.#log = components.logger.forComponent('cluster');
    this.#init = init;
    const { store } = components;
    this.liveness = new HostLiveness(
      { store, membership: () => this.#membership },
      { self: init.hostName, timeoutMs: init.hostTimeoutMs },
    );
    this.placement = new Placement({ store, liveness: this.liveness });
    this.#scheduler = new Scheduler(
      {
        store,
        placement: this.placement,
        liveness: this.liveness,
        log: components.logger.forComponent('scheduler'),
        metrics: components.metrics,
      },
      { hostName: init.hostName },
    );
    this.#hosts = new HostController(
      {
        store,
        liveness: this.liveness,
        facts: () => ({
          ...components.facts(),
          ...(this.#node?.started
            ? { peerId: this.#node.peerId.toString(), p2pAddrs: this.#node.multiaddrs }
            : {}),
        }),
        allocations: this.placement,
        placement: this.placement,
        log: components.logger.forComponent('host-controller'),
        metrics: components.metrics,
      },
      {
        hostName: init.hostName,
        labels: init.labels,
        maxInstances: init.maxInstances,
        autoDrainAfterMs: init.autoDrainAfterMs,
      },
    );
  }

  /** The libp2p node, when this host is in an overlay and started. */
  get node(): XenosNode | undefined {
    return this.#node;
  }

  get discovery(): Discovery | undefined {
    return this.#discovery;
  }

  /** The node and its discovery, once both run (the discover API uses them). */
  get overlay(): { discovery: Discovery; node: XenosNode } | undefined {
    return this.#node && this.#discovery ? { node: this.#node, discovery: this.#discovery } : undefined;
  }

  get replicator(): Replicator | undefined {
    return this.#replicator;
  }

  /** Replication's stream transport (its byte counts), with p2p. */
  get replicationTransport(): { bytesSent: number; bytesReceived: number } | undefined {
    return this.#replicationTransport;
  }

  /**
   * Resolves once this host's store has caught up with the cluster, so what it believes is bound to it is
   * what the cluster says (a host back from the dead must not run copies of instances that failed over
   * meanwhile): at once without replication or when this host knows no other host; otherwise after its
   * first anti-entropy exchange with a peer, or when the membership has warmed up and met no live peer
   * (this host is all of the cluster it can reach).
   */
  async caughtUp(signal?: AbortSignal): Promise<void> {
    const replicator = this.#replicator;
    if (!replicator) return;
    const others = this.#components.store
      .list(HOST.kind)
      .items.some((h) => h.metadata.name !== this.#init.hostName);
    if (!others) return;
    // The poll for "alone" ends with the wait, whichever way the wait ends.
    const done = new AbortController();
    const stop = signal ? AbortSignal.any([signal, done.signal]) : done.signal;
    const quiet = { signal: stop } as const;
    const alone = (async () => {
      await delay(this.liveness.remainingMs(), undefined, quiet).catch(() => {});
      while (!stop.aborted && this.liveness.liveHosts().length > 1)
        await delay(1000, undefined, quiet).catch(() => {});
    })();
    try {
      await Promise.race([replicator.caughtUp(), alone]);
    } finally {
      done.abort();
    }
  }

  /** Which hosts are alive (SWIM over the overlay), when this host is in one. */
  get membership(): Membership | undefined {
    return this.#membership;
  }

  /** With p2p: starts the node and checks with the first peers reached that no other host holds this
   *  host's name (throws HostNameTakenError). Without: nothing. start() calls it if it has not run. */
  async join(): Promise<void> {
    if (this.#joined) return;
    this.#joined = true;
    const { store, logger } = this.#components;
    const p2p = this.#init.p2p;
    if (p2p) {
      // libp2p and the rest of the overlay are loaded only now: a single host never loads them.
      const {
        clusterProtector,
        handshakeRefusalCounter,
        Libp2pTransport,
        loadOrCreatePeerKey,
        Membership,
        openXenosNode,
        PEER_KEY_FILE,
        peerSigner,
        Replicator,
      } = await import('./overlay-parts.ts');
      const p2pLog = logger.forComponent('p2p');
      this.#hook = p2p.connectionHook;
      // Shared by the node and the protector (which a test hook may wrap) around the cluster key's.
      const handshakeRefusals = handshakeRefusalCounter(p2pLog);
      const node = await openXenosNode({
        dataDir: this.#init.dataDir,
        listen: p2p.listen,
        bootstrap: p2p.join,
        clusterKeyFile: p2p.clusterKeyFile,
        createClusterKey: true,
        log: p2pLog,
        handshakeRefusals,
        metrics: this.#components.metrics,
        ...(this.#hook
          ? {
              connectionProtector: this.#hook.wrapProtector((psk) =>
                clusterProtector({ psk, refusals: handshakeRefusals }),
              ),
            }
          : {}),
      });
      this.#node = node;
      await node.start();
      await this.#hook?.start(node);
      const { privateKey } = await loadOrCreatePeerKey(join(this.#init.dataDir, PEER_KEY_FILE));
      this.#membership = new Membership(
        {
          node,
          signer: peerSigner(privateKey, node.peerId.toString()),
          log: logger.forComponent('membership'),
        },
        { hostTimeoutMs: this.#init.hostTimeoutMs },
      );
      const membership = this.#membership;
      await membership.start();
      const validator = this.#components.validator;
      const transport = new Libp2pTransport({
        node,
        members: () => liveMembers(membership),
        log: logger.forComponent('replication'),
      });
      this.#replicationTransport = transport;
      this.#replicator = new Replicator(
        {
          store,
          transport,
          validate: (obj: XObject) => validateReplicated(validator, obj),
          log: logger.forComponent('replication'),
        },
        { syncIntervalMs: p2p.syncIntervalMs },
      );
      const refusals = [node.recordRefusals, handshakeRefusals, membership.swim.refusals, transport.refusals];
      for (const counter of [...refusals, this.#replicator.refusals])
        this.#components.metrics?.refusals(counter);
      // Serving at once: peers that connect now sync with this host rather than fail to.
      await this.#replicator.start();
      await this.#checkHostName(node, this.#replicator, p2p.nameCheckTimeoutMs ?? 5_000);
    }
  }

  /** Asks the peers connected within `timeoutMs` (joining: the bootstrap peers) whose this host's name is;
   *  throws HostNameTakenError when one says another peer's. When no peer answers in time (none
   *  reachable yet), the host goes on and asks the first peer that connects later: a duplicate found then
   *  is reported to onFatal. The first host of a cluster (nothing to join) has no one to ask. */
  async #checkHostName(node: XenosNode, replicator: Replicator, timeoutMs: number): Promise<void> {
    if ((this.#init.p2p?.join ?? []).length === 0) return;
    const deadline = AbortSignal.timeout(timeoutMs);
    while (node.connectedPeers().length === 0 && !deadline.aborted) {
      await new Promise((r) => setTimeout(r, 20));
    }
    if (await this.#askName(node, replicator, node.connectedPeers())) return;
    this.#log.warn(
      `could not check yet that host name ${this.#init.hostName} is free: no peer answered within ` +
        `${timeoutMs} ms; asking the first peer that connects`,
    );
    const later = (evt: Event): void => {
      const peer = String((evt as CustomEvent<string>).detail);
      this.#askName(node, replicator, [peer]).then(
        (answered) => {
          if (answered) node.removeEventListener('peer:connect', later);
        },
        (err: Error) => {
          node.removeEventListener('peer:connect', later);
          this.#log.fatal({ err }, err.message);
          this.#components.onFatal?.(err);
        },
      );
    };
    node.addEventListener('peer:connect', later);
  }

  /** Whether any of `peers` answered; throws HostNameTakenError if one names another holder. */
  async #askName(node: XenosNode, replicator: Replicator, peers: string[]): Promise<boolean> {
    const name = this.#init.hostName;
    const self = node.peerId.toString();
    const answers = await Promise.allSettled(
      peers.map(async (peer) => ({
        peer,
        holder: await replicator.whois(peer, name, { signal: AbortSignal.timeout(5000) }),
      })),
    );
    const heard = answers.filter((a) => a.status === 'fulfilled').map((a) => a.value);
    for (const { peer, holder } of heard) {
      if (holder !== undefined && holder !== self) throw new HostNameTakenError(name, holder, self, peer);
    }
    return heard.length > 0;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.join();
    const { store, logger } = this.#components;
    const p2p = this.#init.p2p;
    const node = this.#node;
    if (p2p && node) {
      const { Discovery, loadOrCreatePeerKey, PEER_KEY_FILE, RecordPublisher, StatusPublisher } =
        await import('./overlay-parts.ts');
      const { privateKey } = await loadOrCreatePeerKey(join(this.#init.dataDir, PEER_KEY_FILE));
      const records = new RecordPublisher({ node, privateKey }, { dataDir: this.#init.dataDir });
      // The DHT records live --dht-record-ttl (10 min), republished at half of it (and at once on a change). They
      // used to expire with the host timeout and so be re-put every few seconds by every host: a heartbeat
      // through the DHT, whose verification was ~70 % of an idle host's CPU at 10 hosts and grew with N.
      // Liveness is the membership's (discover holds DHT answers to it too), so records need not expire fast.
      const ttl = this.#init.dhtRecordTtlMs ?? DHT_RECORD_TTL_MS;
      this.#discovery = new Discovery(
        { node, records, log: logger.forComponent('discovery') },
        { statusTtl: ttl },
      );
      await this.#discovery.start();
      this.#publisher = new StatusPublisher(
        {
          store,
          discovery: this.#discovery,
          records,
          peerId: node.peerId.toString(),
          log: logger.forComponent('status'),
        },
        { hostName: this.#init.hostName, ttlMs: ttl },
      );
    }
    this.liveness.start();
    this.#hosts.start();
    this.#scheduler.start();
    this.#publisher?.start();
  }

  /** This host's facts changed (the daemon's parts have started, the driver is chosen): write them now, so
   *  placement need not wait for the next re-read to see this host's driver. */
  refreshHost(): void {
    this.#hosts.refreshSelf();
  }

  async stop(): Promise<void> {
    if (!this.#started && !this.#joined) return;
    this.#started = false;
    this.#joined = false;
    await this.#publisher?.stop();
    await this.#scheduler.stop();
    await this.#hosts.stop();
    this.liveness.stop();
    await this.#membership?.stop();
    await this.#replicator?.stop();
    await this.#discovery?.stop();
    this.#hook?.stop();
    this.#hook = undefined;
    await this.#node?.stop();
    this.#publisher = undefined;
    this.#replicator = undefined;
    this.#replicationTransport = undefined;
    this.#membership = undefined;
    this.#discovery = undefined;
    this.#node = undefined;
  }
}
