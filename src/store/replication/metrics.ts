// The replicator's counters in the Prometheus text exposition format, for the daemon's /metrics: rows
// written here and sent (by push, by anti-entropy), rows received, applied, stale and refused, syncs.
// "Rows sent per write" is (pushed + synced) / local writes, summed over the hosts of a cluster.

import type { ReplicatorStats } from './replica-store.ts';
import type { Replicator } from './replicator.ts';

const COUNTERS: Array<[keyof ReplicatorStats, string, string]> = [
  [
    'localWrites',
    'xenos_replication_local_writes_total',
    'Writes made on this host (each pushed once to every peer).',
  ],
  ['pushedRows', 'xenos_replication_rows_pushed_total', 'Rows sent to peers in pushes.'],
  ['syncedRows', 'xenos_replication_rows_synced_total', 'Rows sent to peers by anti-entropy.'],
  [
    'receivedRows',
    'xenos_replication_rows_received_total',
    'Rows received from peers (pushes and anti-entropy).',
  ],
  ['applied', 'xenos_replication_rows_applied_total', 'Received rows that changed this host.'],
  ['stale', 'xenos_replication_rows_stale_total', 'Received rows this host already had (or newer).'],
  ['syncs', 'xenos_replication_syncs_total', 'Anti-entropy exchanges completed.'],
  ['failedSyncs', 'xenos_replication_syncs_failed_total', 'Anti-entropy exchanges that failed.'],
  [
    'failedPushes',
    'xenos_replication_pushes_failed_total',
    'Pushes (or queued rows) that failed or were dropped.',
  ],
];

export function replicationMetrics(replicator: Replicator): string {
  const lines: string[] = [];
  for (const [stat, name, help] of COUNTERS) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${replicator.stats[stat]}`);
  }
  return `${lines.join('\n')}\n${replicator.refusals.exposition()}`;
}
