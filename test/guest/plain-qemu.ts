// Boots the demo guest with plain QEMU (no Xenos driver; scripts/guest-image/qemu-command.ts has the command line), for
// the tests of the guest image itself: the console read from its file, the forwarded HTTP port found
// through QMP (the driver's own QMP client).

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createOverlay, plainQemuArgs } from '../../scripts/guest-image/qemu-command.ts';
import { QmpClient } from '../../src/drivers/qemu/qmp.ts';

export interface PlainGuest {
  process: ChildProcess;
  /** The host port forwarded to the guest's port 80. */
  httpPort: number;
  /** What the guest wrote on its serial console so far. */
  console(): string;
  /** Runs one QMP command and returns its `return` value (throws on a QMP error). */
  qmp(execute: string, args?: Record<string, unknown>): Promise<unknown>;
  /** Resolves when QEMU exits, with its exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Kills QEMU if it still runs, and closes the QMP connection. */
  stop(): Promise<void>;
}

export interface BootOptions {
  image: string;
  /** A scratch directory for the overlay, the console file and the QMP socket. */
  work: string;
  /** The kernel and initrd in the image: `vmlinux` (PVH boot) or `vmlinuz`; `initrd.img`. */
  kernel?: string;
  initrd?: string;
  cmdline: string;
  /** An existing qcow2 overlay (defaults to a new one over the image's disk.img). */
  overlay?: string;
}

export async function bootGuest(opts: BootOptions): Promise<PlainGuest> {
  const consoleFile = join(opts.work, 'console.log');
  const qmpSocket = join(opts.work, 'qmp.sock');
  const overlay = opts.overlay ?? createOverlay(opts.image, join(opts.work, 'overlay.qcow2'));
  const qemu = spawn('qemu-system-x86_64', plainQemuArgs({ ...opts, overlay, consoleFile, qmpSocket }), {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  qemu.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => qemu.once('exit', (code) => resolve(code)));
  let running = true;
  void exited.then(() => {
    running = false;
  });

  const readConsole = (): string => {
    try {
      return readFileSync(consoleFile, 'utf8');
    } catch {
      return '';
    }
  };
  let qmp: QmpClient | undefined;
  const stop = async (): Promise<void> => {
    await qmp?.close();
    if (running) {
      qemu.kill('SIGKILL');
      await exited;
    }
  };
  try {
    const gone = new AbortController();
    void exited.then(() => gone.abort(new Error(`QEMU exited: ${stderr.trim()}`)));
    qmp = await QmpClient.connect(qmpSocket, { timeoutMs: 20_000, signal: gone.signal });
    // The host port QEMU picked for the forward (hostfwd with port 0), from the user-mode network's table.
    const table = String(await qmp.execute('human-monitor-command', { 'command-line': 'info usernet' }));
    const forward = /HOST_FORWARD\]\s+\d+\s+127\.0\.0\.1\s+(\d+)\s+10\.0\.2\.15\s+80\b/.exec(table);
    if (!forward) throw new Error(`no host forward to the guest's port 80 in:\n${table}`);
    const guest = qmp;
    return {
      process: qemu,
      httpPort: Number(forward[1]),
      console: readConsole,
      qmp: (execute, args) => guest.execute(execute, args),
      exited,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
