// The replicator's counters as the daemon's /metrics names them (read at each scrape): rows written here
// and sent (by push, by anti-entropy), rows received, applied and stale, syncs.
// "Rows sent per write" is (pushed + synced) / local writes, summed over the hosts of a cluster.

import type { ReplicatorStats } from './replica-store.ts';

export const REPLICATION_COUNTERS: Array<[keyof ReplicatorStats, string, string]> = [
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
