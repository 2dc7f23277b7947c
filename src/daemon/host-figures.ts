// The figures /metrics reads at each scrape from what the daemon's parts already keep: the overlay's
// (DHT routing table, connections, live hosts, replication rows and bytes) and the store's (this host's
// instances by phase). And the migrations this host was the source of, counted as each one ends (a
// watch on ServiceMigration: Succeeded or Failed, with its pause). What parts report as it happens
// (reconciles, API requests, DHT queries) they report themselves (src/metrics/host-metrics.ts).

import type { HostMetrics } from '../metrics/host-metrics.ts';
import { SERVICE_INSTANCE, SERVICE_MIGRATION } from '../model/kinds.ts';
import type { ServiceMigration } from '../model/service-migration.ts';
import { REPLICATION_COUNTERS } from '../store/replication/metrics.ts';
import type { Store } from '../store/store.ts';
import type { ClusterService } from './cluster-service.ts';

/** Where an instance can be (the CRD's status.phase); each is reported, 0 when none is there. */
const INSTANCE_PHASES = [
  'Pending',
  'Pulling',
  'Starting',
  'Running',
  'Stopping',
  'Stopped',
  'Failed',
  'Terminating',
  'Unknown',
] as const;

/** The overlay's figures, read through `cluster()` (absent, or without p2p: 0). */
export function clusterFigures(metrics: HostMetrics, cluster: () => ClusterService | undefined): void {
  const node = () => cluster()?.overlay?.node;
  metrics.gaugeFrom(
    'xenos_dht_peers',
    'Peers in this host’s DHT routing table.',
    () => node()?.routingTableSize ?? 0,
  );
  metrics.gaugeFrom(
    'xenos_p2p_connected_peers',
    'Peers this host holds a libp2p connection to.',
    () => node()?.connectedPeers().length ?? 0,
  );
  metrics.gaugeFrom(
    'xenos_live_hosts',
    'Hosts this host’s membership holds alive (itself included).',
    () => cluster()?.liveness.liveHosts().length ?? 0,
  );
  for (const [stat, name, help] of REPLICATION_COUNTERS)
    metrics.counterFrom(name, help, () => cluster()?.replicator?.stats[stat] ?? 0);
  metrics.counterFrom(
    'xenos_replication_sent_bytes_total',
    'State-replication message bytes sent to peers (requests and replies).',
    () => cluster()?.replicationTransport?.bytesSent ?? 0,
  );
  metrics.counterFrom(
    'xenos_replication_received_bytes_total',
    'State-replication message bytes received from peers (requests and replies).',
    () => cluster()?.replicationTransport?.bytesReceived ?? 0,
  );
}

/** The store's figures for this host, read from `store` (the daemon's open store). Returns
 *  the stop of the migration watch. */
export function storeFigures(metrics: HostMetrics, store: Store, hostName: string): () => void {
  metrics.gaugeFrom(
    'xenos_service_instances',
    'ServiceInstances bound to this host, by phase.',
    () => {
      const count = new Map<string, number>(INSTANCE_PHASES.map((p) => [p, 0]));
      for (const i of store.list(SERVICE_INSTANCE.kind).items) {
        if (i.spec?.host !== hostName) continue;
        const phase = i.status?.phase ?? 'Pending';
        if (count.has(phase)) count.set(phase, (count.get(phase) ?? 0) + 1);
      }
      return [...count].map(([phase, n]) => [{ phase }, n]);
    },
    ['phase'],
  );
  // Counted once each, as it ends; the ones that had ended before this host started are not counted.
  const ended = new Set<string>();
  const over = (m: ServiceMigration) => m.status?.phase === 'Succeeded' || m.status?.phase === 'Failed';
  const listed = store.list(SERVICE_MIGRATION.kind);
  for (const m of listed.items) if (over(m)) ended.add(m.metadata.uid ?? '');
  return store.watch(SERVICE_MIGRATION.kind, { resourceVersion: listed.resourceVersion }, (ev) => {
    const m = ev.object;
    const uid = m.metadata.uid ?? '';
    if (ev.type === 'DELETED') {
      ended.delete(uid);
      return;
    }
    if (!over(m) || ended.has(uid)) return;
    ended.add(uid);
    if (m.status?.sourceHost !== hostName) return;
    const pause = m.status.downtimeMs;
    metrics.migrated(
      m.status.mode ?? 'Unknown',
      m.status.phase as 'Succeeded' | 'Failed',
      pause === undefined ? undefined : pause / 1000,
    );
  });
}
