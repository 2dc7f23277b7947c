// SqliteStore: the Store contract, plus what only a durable store has — data and revision kept
// across reopening, tombstones, changesSince, tombstone purge and the clock's monotonicity.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openStore } from '../../src/store/sqlite-store.ts';
import { runStoreContract } from './store-contract.ts';

const root = mkdtempSync(join(tmpdir(), 'xenos-store-'));
let n = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

runStoreContract('SqliteStore', ({ namespaced, historySize }) =>
  openStore({ path: join(root, `c${n++}`, 'store.db'), namespaced, historySize, writer: 'host-a' }),
);
