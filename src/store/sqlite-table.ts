// The rows of the store in SQLite (node:sqlite): opening the database durable (WAL, synchronous=FULL),
// its migrations, the prepared statements, reading and writing one row, and the revision counter kept
// in the meta table. It knows rows and their versions, not the rules of objects (object-rules.ts) or
// watches (watch-hub.ts); sqlite-store.ts puts them together.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { Log } from '../log/logger.ts';
import type { ErrorObjectRef } from './errors.ts';
import type { PartVersion, VersionedRow } from './replicated-merge.ts';
import type { WriterBindings } from './row-authority.ts';
import { migrate } from './sqlite-schema.ts';
import { Transactions } from './transactions.ts';

/** One row as changesSince() and the signing of old rows read it: a versioned row with its key. */
export interface ChangeRow extends VersionedRow {
  kind: string;
  namespace: string;
  name: string;
}

/** One row of a list: its key within the kind, revision and body. */
export interface ListRow {
  namespace: string;
  name: string;
  revision: number;
  body: string;
}

function prepare(db: DatabaseSync) {
  return {
    get: db.prepare(
      `SELECT revision, deleted, body, hlc, writer, status_hlc, status_writer, proof, status_proof, status_base
       FROM objects WHERE kind = ? AND namespace = ? AND name = ?`,
    ),
    upsert: db.prepare(
      `INSERT INTO objects (kind, namespace, name, revision, deleted, hlc, writer, status_hlc, status_writer,
         proof, status_proof, status_base, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (kind, namespace, name) DO UPDATE SET revision = excluded.revision,
         deleted = excluded.deleted, hlc = excluded.hlc, writer = excluded.writer,
         status_hlc = excluded.status_hlc, status_writer = excluded.status_writer, proof = excluded.proof,
         status_proof = excluded.status_proof, status_base = excluded.status_base, body = excluded.body`,
    ),
    setMeta: db.prepare(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
    listAll: db.prepare(
      `SELECT namespace, name, revision, body FROM objects
       WHERE kind = ? AND deleted = 0 AND (namespace, name) > (?, ?) ORDER BY namespace, name`,
    ),
    listNs: db.prepare(
      `SELECT namespace, name, revision, body FROM objects
       WHERE kind = ? AND deleted = 0 AND namespace = ? AND name > ? ORDER BY name`,
    ),
    changes: db.prepare(
      `SELECT kind, namespace, name, revision, deleted, hlc, writer, status_hlc, status_writer, proof,
         status_proof, status_base, body
       FROM objects WHERE revision > ? ORDER BY revision LIMIT ?`,
    ),
    purge: db.prepare('DELETE FROM objects WHERE deleted = 1 AND hlc < ? RETURNING kind, revision'),
    changesOfKind: db.prepare(
      `SELECT namespace, name, revision, deleted, body FROM objects
       WHERE kind = ? AND revision > ? AND revision <= ? ORDER BY revision LIMIT ?`,
    ),
    versions: db.prepare(
      `SELECT kind, namespace, name, deleted, hlc, status_hlc,
         (proof = '' OR (status_hlc != '' AND status_proof = '')) AS unsigned
       FROM objects ORDER BY kind, namespace, name`,
    ),
    expire: db.prepare(
      'DELETE FROM objects WHERE kind = ? AND hlc < ? RETURNING namespace, name, revision, deleted, body',
    ),
    writerOf: db.prepare('SELECT peer_id FROM writers WHERE name = ?'),
    bindWriter: db.prepare('INSERT INTO writers (name, peer_id) VALUES (?, ?) ON CONFLICT DO NOTHING'),
    unsignedOwn: db.prepare(
      `SELECT kind, namespace, name, revision, deleted, hlc, writer, status_hlc, status_writer, proof,
         status_proof, status_base, body
       FROM objects WHERE (writer = ? AND proof = '') OR (status_writer = ? AND status_proof = '')`,
    ),
    ownRow: db.prepare('SELECT 1 AS own FROM objects WHERE writer = ? OR status_writer = ? LIMIT 1'),
    setProofs: db.prepare(
      'UPDATE objects SET proof = ?, status_proof = ? WHERE kind = ? AND namespace = ? AND name = ?',
    ),
  } satisfies Record<string, StatementSync>;
}

export type Statements = ReturnType<typeof prepare>;

export class ObjectTable {
  readonly db: DatabaseSync;
  readonly sql: Statements;
  readonly tx: Transactions;
  /** Writer names bound to the peer ids that sign for them (row-authority.ts), read through to SQL. */
  readonly bindings: WriterBindings;
  /** The latest revision written (inside an open transaction: including its writes). */
  rev: number;
  /** Moves on every row write (local, replicated or purge): tells a digest cache it is stale. */
  stamp = 0;

  /** Opens (and migrates) the database at `path`, or ':memory:' for one that is not durable. */
  constructor(path: string, log: Log) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new DatabaseSync(path);
    try {
      this.db.exec('PRAGMA journal_mode = WAL');
      this.db.exec('PRAGMA synchronous = FULL');
      this.db.exec('PRAGMA busy_timeout = 5000');
      migrate(this.db, path);
      this.sql = prepare(this.db);
    } catch (err) {
      this.db.close();
      throw err;
    }
    this.bindings = {
      peerOf: (name) => (this.sql.writerOf.get(name) as { peer_id: string } | undefined)?.peer_id,
      bind: (name, peerId) => {
        this.sql.bindWriter.run(name, peerId);
      },
    };
    this.rev = this.#storedRevision();
    // A rolled-back write may have moved the counter: take the database's word for it again.
    this.tx = new Transactions(
      { db: this.db, log },
      { onRollback: () => (this.rev = this.#storedRevision()) },
    );
  }

  meta(key: string): string | undefined {
    return (this.sql.getMeta.get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.sql.setMeta.run(key, value);
  }

  readRow(key: ErrorObjectRef): VersionedRow | undefined {
    return this.sql.get.get(key.kind, key.namespace, key.name) as VersionedRow | undefined;
  }

  /** Inside a transaction: stores one row, and the revision and clock (`hlc`, the clock's last
   *  timestamp) it moved to. */
  writeRow(
    key: ErrorObjectRef,
    revision: number,
    deleted: boolean,
    main: PartVersion,
    status: PartVersion,
    body: string,
    hlc: string,
  ): void {
    this.sql.upsert.run(
      key.kind,
      key.namespace,
      key.name,
      revision,
      deleted ? 1 : 0,
      main.hlc,
      main.writer,
      status.hlc,
      status.writer,
      main.proof,
      status.proof,
      status.base ?? '',
      body,
    );
    // A row that only moved versions keeps its old revision: the counter stays at the top.
    this.rev = Math.max(this.rev, revision);
    this.setMeta('revision', String(this.rev));
    this.setMeta('hlc', hlc);
    this.stamp++;
  }

  setProofs(key: ErrorObjectRef, proof: string, statusProof: string): void {
    this.sql.setProofs.run(proof, statusProof, key.kind, key.namespace, key.name);
    this.stamp++;
  }

  close(): void {
    this.tx.close();
    this.db.close();
  }

  #storedRevision(): number {
    return Number(this.meta('revision') ?? '0');
  }
}
