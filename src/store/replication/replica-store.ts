// What replication needs of the store and of the API's validation, as interfaces, so this folder imports
// neither the SQLite store's class nor anything above src/store. SqliteStore has ReplicaStore; the daemon
// passes a ValidateObject built from src/api/validation.ts.

import type { XObject } from '../../model/object.ts';
import type { WriterBindings } from '../row-authority.ts';
import type { ApplyOutcome, ReplicatedRow, RowVersion } from '../sqlite-store.ts';
import type { ObjectKey } from '../store.ts';

/** What the replicator uses of the store (SqliteStore has it). */
export interface ReplicaStore {
  /** Merges rows in one transaction; one outcome per row, in order (see SqliteStore). */
  applyReplicatedBatch(rows: readonly ReplicatedRow[]): ApplyOutcome[];
  replicationRow(key: ObjectKey): ReplicatedRow | undefined;
  replicationVersions(): Iterable<RowVersion>;
  versionStamp(): number;
  onLocalWrite(listener: (key: ObjectKey) => void): () => void;
  purgeTombstones(olderThanMs: number, now?: number): number;
  /** Writer names bound to peer ids (answers `whois`). */
  readonly bindings: WriterBindings;
}

/** Checks an object from a peer against its kind's schema; empty when valid. The daemon passes one
 *  built from src/api/validation.ts (spec and status), so this module does not import the API. */
export type ValidateObject = (obj: XObject) => ReadonlyArray<{ path: string; message: string }>;

/** Counters of one replicator, summed since it was made (the daemon's /metrics shows them). */
export interface ReplicatorStats {
  /** Writes made on this host (each is pushed once to every peer). */
  localWrites: number;
  /** Rows sent in pushes: each local write once to each peer. */
  pushedRows: number;
  /** Rows sent by anti-entropy (in exchanges this host started, and in answers to a peer's). */
  syncedRows: number;
  /** Rows received from peers (pushes and exchanges), before any check. */
  receivedRows: number;
  /** Received rows that changed this host. */
  applied: number;
  /** Received rows that were not newer than ours (or expired tombstones). */
  stale: number;
  /** Received rows dropped as invalid (or of which a part was); by reason in Replicator.refusals. */
  rejected: number;
  syncs: number;
  failedSyncs: number;
  failedPushes: number;
}

export function emptyStats(): ReplicatorStats {
  return {
    localWrites: 0,
    pushedRows: 0,
    syncedRows: 0,
    receivedRows: 0,
    applied: 0,
    stale: 0,
    rejected: 0,
    syncs: 0,
    failedSyncs: 0,
    failedPushes: 0,
  };
}
