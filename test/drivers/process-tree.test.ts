// Finding a domain's processes (src/drivers/process/process-tree.ts): read down the kernel's per-thread
// lists of children, which must find what a scan of all of /proc finds — grandchildren, and children forked
// by a thread other than the main one (the kernel lists a child under the thread that forked it).

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { descendants, descendantsByScan, hasChild } from '../../src/drivers/process/process-tree.ts';

/** A node process with a worker thread that starts `sleep`, and a shell (from the main thread) with a
 *  sleeping child of its own; prints READY once all are up. */
const TREE = `
const { Worker } = require('node:worker_threads');
const { spawn } = require('node:child_process');
spawn('sh', ['-c', 'sleep 60 & wait'], { stdio: 'ignore' });
new Worker("require('node:child_process').spawn('sleep', ['61'], { stdio: 'ignore' }); require('node:worker_threads').parentPort.postMessage('up'); setInterval(() => {}, 1000)", { eval: true })
  .on('message', () => setTimeout(() => console.log('READY'), 300));
setInterval(() => {}, 1000);
`;

const comm = (pid: number) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();

let root: ChildProcess | undefined;
afterEach(async () => {
  if (!root?.pid) return;
  // The whole tree, or the sleeps would outlive the test as orphans.
  for (const p of await descendantsByScan(root.pid)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {}
  }
  root.kill('SIGKILL');
  root = undefined;
});

async function startTree(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', TREE], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('READY') && resolve());
    child.on('exit', (code) => reject(new Error(`tree exited ${code}`)));
  });
  return child;
}

describe('descendants', () => {
  it('finds grandchildren and a worker thread’s children, as a scan of /proc does', async () => {
    root = await startTree();
    const found = await descendants(root.pid!);
    const names = found.map((p) => comm(p.pid)).sort();
    expect(names).toEqual(['sh', 'sleep', 'sleep']);
    const byScan = await descendantsByScan(root.pid!);
    expect(found.map((p) => p.pid).sort()).toEqual(byScan.map((p) => p.pid).sort());
    // Parents before children: the shell comes before its sleep.
    const sh = found.findIndex((p) => comm(p.pid) === 'sh');
    const shChild = found.findIndex((p) => p.ppid === found[sh].pid);
    expect(shChild).toBeGreaterThan(sh);
    expect(await hasChild(root.pid!)).toBe(true);
    const leaf = found.find((p) => comm(p.pid) === 'sleep')!;
    expect(await hasChild(leaf.pid)).toBe(false);
  });

  it('is empty for a process that is gone', async () => {
    expect(await descendants(2 ** 22 + 1)).toEqual([]);
  });
});
