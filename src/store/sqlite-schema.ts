// The tables of the SQLite store and how an older database is brought up to date on open (in one
// transaction, so a failed migration leaves the file as it was).
//
//   1: one version per row.
//   2: the status part gets its own version (status_hlc, status_writer).
//   3: each part version carries its writer's proof (proof, status_proof, and status_base for a verdict:
//      src/store/row-proof.ts), and `writers` binds writer names to the peer ids that sign for them.

import type { DatabaseSync } from 'node:sqlite';

export const SCHEMA_VERSION = 3;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS objects (
  kind      TEXT NOT NULL,
  namespace TEXT NOT NULL,
  name      TEXT NOT NULL,
  revision  INTEGER NOT NULL,
  deleted   INTEGER NOT NULL DEFAULT 0,
  hlc       TEXT NOT NULL,
  writer    TEXT NOT NULL,
  body      TEXT NOT NULL,
  status_hlc    TEXT NOT NULL DEFAULT '',
  status_writer TEXT NOT NULL DEFAULT '',
  proof         TEXT NOT NULL DEFAULT '',
  status_proof  TEXT NOT NULL DEFAULT '',
  status_base   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (kind, namespace, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_by_revision ON objects (revision);
CREATE INDEX IF NOT EXISTS tombstones_by_hlc ON objects (hlc) WHERE deleted = 1;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS writers (name TEXT PRIMARY KEY, peer_id TEXT NOT NULL) WITHOUT ROWID;
`;

/** Version 1 → 2: the status part gets its own version, initially the row's (its last write). */
const MIGRATE_1_TO_2 = `
ALTER TABLE objects ADD COLUMN status_hlc TEXT NOT NULL DEFAULT '';
ALTER TABLE objects ADD COLUMN status_writer TEXT NOT NULL DEFAULT '';
UPDATE objects SET status_hlc = hlc, status_writer = writer;
`;

/** Version 2 → 3: proofs, empty until the store signs its own parts (see SqliteStore) or a peer's signed
 *  copy of the same version arrives. */
const MIGRATE_2_TO_3 = `
ALTER TABLE objects ADD COLUMN proof TEXT NOT NULL DEFAULT '';
ALTER TABLE objects ADD COLUMN status_proof TEXT NOT NULL DEFAULT '';
ALTER TABLE objects ADD COLUMN status_base TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS writers (name TEXT PRIMARY KEY, peer_id TEXT NOT NULL) WITHOUT ROWID;
`;

/** Creates the tables, or migrates an older database; throws for one newer than this code. */
export function migrate(db: DatabaseSync, path: string): void {
  const version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  if (version > SCHEMA_VERSION) {
    throw new Error(
      `store ${path} has schema version ${version}, newer than this xenos understands ` +
        `(${SCHEMA_VERSION}); run a newer xenosd or point it at another data directory`,
    );
  }
  const steps = version === 0 ? SCHEMA : [MIGRATE_1_TO_2, MIGRATE_2_TO_3].slice(version - 1).join('');
  db.exec(`BEGIN IMMEDIATE; ${steps} PRAGMA user_version = ${SCHEMA_VERSION}; COMMIT`);
}
