// Crash safety: a real child process writes to the store as fast as it can and is killed with
// SIGKILL at a random moment, several times over the same database. After each kill the database
// must pass SQLite's integrity check and hold every write the child acknowledged.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, afterEach, expect, it } from 'vitest';
import { openStore } from '../../src/store/sqlite-store.ts';

const WRITER = join(import.meta.dirname, 'crash-writer.ts');
const ROUNDS = 6;
const dir = mkdtempSync(join(tmpdir(), 'xenos-crash-'));
const dbPath = join(dir, 'store.db');
let child: ChildProcess | undefined;

afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Acks {
  created: Set<string>;
  /** name → highest acknowledged spec.v */
  updated: Map<string, number>;
}

/** Runs the writer until it has acknowledged `killAfter` writes, kills it, and returns every
 *  line it managed to print (lines printed after the kill was sent count too). */
async function runAndKill(
  prefix: string,
  killAfter: number,
  mode = 'single',
): Promise<Acks & { signal: string | null }> {
  const acks: Acks = { created: new Set(), updated: new Map() };
  const proc = spawn(process.execPath, ['--no-warnings', WRITER, dbPath, prefix, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child = proc;
  const exited = new Promise<string | null>((resolve) =>
    proc.on('close', (_code, signal) => resolve(signal)),
  );
  let count = 0;
  for await (const line of createInterface({ input: proc.stdout! })) {
    const [op, name, v] = line.split(' ');
    if (op === 'C') acks.created.add(name);
    else if (op === 'U') acks.updated.set(name, Number(v));
    else if (op !== 'ready') throw new Error(`unexpected line from the writer: ${line}`);
    if (op !== 'ready' && ++count === killAfter) proc.kill('SIGKILL');
  }
  return { ...acks, signal: await exited };
}

it.each([
  ['one transaction per write', 'single'],
  ['group commit: 16 writers sharing transactions, each acknowledged after its batch commits', 'group'],
])(
  'keeps every acknowledged write and an intact database across repeated kill -9 (%s)',
  async (_, mode) => {
    const all: Acks = { created: new Set(), updated: new Map() };
    for (let round = 0; round < ROUNDS; round++) {
      const killAfter = 1 + Math.floor(Math.random() * 300);
      const got = await runAndKill(`${mode}${round}`, killAfter, mode);
      expect(got.signal, 'the writer should have died by SIGKILL, mid-stream').toBe('SIGKILL');
      expect(got.created.size).toBeGreaterThan(0);
      for (const name of got.created) all.created.add(name);
      for (const [name, v] of got.updated) all.updated.set(name, v);

      const raw = new DatabaseSync(dbPath);
      try {
        expect(raw.prepare('PRAGMA integrity_check').all()).toEqual([{ integrity_check: 'ok' }]);
      } finally {
        raw.close();
      }
      const store = openStore({ path: dbPath, namespaced: () => true });
      try {
        const missing = [...all.created].filter(
          (name) => !store.get({ kind: 'Counter', namespace: 'crash', name }),
        );
        expect(missing, `acknowledged creates lost after round ${round}`).toEqual([]);
        for (const [name, v] of all.updated) {
          const obj = store.get({ kind: 'Counter', namespace: 'crash', name })!;
          expect((obj.spec as { v: number }).v, `${name}: acknowledged update lost`).toBeGreaterThanOrEqual(
            v,
          );
        }
        const acked = all.created.size + all.updated.size;
        expect(Number(store.revision())).toBeGreaterThanOrEqual(acked);
        expect(store.list('Counter').items.length).toBeGreaterThanOrEqual(all.created.size);
      } finally {
        store.close();
      }
    }
  },
  60_000,
);
