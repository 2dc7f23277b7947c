// A test hook for real xenosd processes: holds a migration's transfer midway, deterministically. Wraps
// the source's MigrationTransport so that, while DIR/armed exists, each stream stops writing once
// HOLD_AFTER bytes went through, writes DIR/held (the test now knows the transfer is midway) and waits —
// abortably, the migration's own signal or a reset of its stream ends the wait — until DIR/release
// exists. While DIR/cut-go exists, a live move's `go` on its control stream is dropped and that stream
// reset instead (DIR/cut written): the link breaks right after the source committed, before the target
// heard so. Wired by xenosd-with-faults.ts (--migration-gate DIR); xenosd itself has no such hook.

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import type { MigrationTransport } from '../../../src/drivers/driver.ts';

const HOLD_AFTER = 256 * 1024;
const POLL_MS = 50;

async function held(dir: string, label: string, signal: AbortSignal): Promise<void> {
  writeFileSync(join(dir, 'held'), label);
  while (!existsSync(join(dir, 'release'))) {
    signal.throwIfAborted();
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function cutsGo(dir: string, label: string, chunk: Buffer): boolean {
  return label === 'control' && existsSync(join(dir, 'cut-go')) && chunk.includes('"type":"go"');
}

/** `inner` behind a gate on its writes (reads pass straight through). */
function gated(inner: Duplex, dir: string, label: string): Duplex {
  let sent = 0;
  const stop = new AbortController();
  const outer: Duplex = new Duplex({
    allowHalfOpen: true,
    read() {
      inner.resume();
    },
    write(chunk: Buffer, _enc, callback) {
      if (cutsGo(dir, label, chunk)) {
        writeFileSync(join(dir, 'cut'), label);
        const err = new Error('the migration gate cut the control stream at go');
        callback(err);
        outer.destroy(err);
        return;
      }
      const wait =
        sent >= HOLD_AFTER && existsSync(join(dir, 'armed'))
          ? held(dir, label, stop.signal)
          : Promise.resolve();
      wait.then(
        () => {
          sent += chunk.length;
          inner.write(chunk, (err) => callback(err ?? undefined));
        },
        (err: Error) => callback(err),
      );
    },
    final(callback) {
      inner.end(callback);
    },
    destroy(err, callback) {
      stop.abort(err ?? new Error('destroyed'));
      inner.destroy(err ?? undefined);
      callback(err);
    },
  });
  inner.on('data', (d: Buffer) => {
    if (!outer.push(d)) inner.pause();
  });
  inner.on('end', () => outer.push(null));
  inner.on('error', (err) => outer.destroy(err));
  inner.on('close', () => {
    if (!inner.readableEnded || !inner.writableFinished) outer.destroy();
  });
  return outer;
}

export function migrationGate(dir: string): (t: MigrationTransport) => MigrationTransport {
  return (t) => ({
    async open(label, options) {
      return gated(await t.open(label, options), dir, label);
    },
  });
}
