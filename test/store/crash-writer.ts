// Child process for crash.test.ts: opens the store at argv[2] and writes without pause — a create
// of `<prefix>-<i>`, then an update of the previous object's spec.v — printing a line to stdout
// only after each write has returned (so each line is an acknowledged, committed write):
//   C <name>        created
//   U <name> <v>    spec.v set to v
// The parent kills it with SIGKILL at a random moment and checks that every printed write is there.
// With a third argument `group`, 16 writers run at once through groupCommit() (many writes to one
// transaction), each printing its line when its promise resolves, i.e. once its batch is committed.

import { writeSync } from 'node:fs';
import type { XObject } from '../../src/model/object.ts';
import { openStore } from '../../src/store/sqlite-store.ts';

const [path, prefix, mode] = process.argv.slice(2);
if (!path || !prefix) {
  console.error('usage: crash-writer.ts <db path> <name prefix>');
  process.exit(2);
}
const store = openStore({ path, namespaced: () => true, writer: 'crash-writer' });
// Synchronous writes to fd 1: a line is out of this process before the next write starts.
const ack = (line: string) => writeSync(1, `${line}\n`);
ack('ready');
const MAX = 100_000; // a bound, in case the parent never kills us
const counter = (name: string, i: number): XObject => ({
  apiVersion: 'xenos.io/v1alpha1',
  kind: 'Counter',
  metadata: { name, namespace: 'crash', labels: { round: prefix } },
  // Payloads of varying size, so pages split and WAL checkpoints happen mid-run.
  spec: { v: 0, payload: 'x'.repeat((i * 977) % 6000) },
});
if (mode === 'group') {
  const writers = 16;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = w; i < MAX; i += writers) {
        const name = `${prefix}-${i}`;
        await store.groupCommit(() => store.create(counter(name, i)));
        ack(`C ${name}`);
        // A write that fails (it exists) inside a batch: it must not take the batch's other writes along.
        await store.groupCommit(() => store.create(counter(name, i))).catch(() => {});
      }
    }),
  );
  process.exit(0);
}
for (let i = 0; i < MAX; i++) {
  const name = `${prefix}-${i}`;
  store.create(counter(name, i));
  ack(`C ${name}`);
  if (i > 0) {
    const prev = store.get({ kind: 'Counter', namespace: 'crash', name: `${prefix}-${i - 1}` })!;
    store.update({ ...prev, spec: { ...(prev.spec as object), v: i } });
    ack(`U ${prev.metadata.name} ${i}`);
  }
}
store.close();
