// Boots the demo guest with plain QEMU (no Xenos driver; scripts/guest-image/qemu-command.ts has the command line), for
// the tests of the guest image itself: the console read from its file, the forwarded HTTP port found
// through QMP, and a minimal line-by-line QMP client (enough for a few commands in a test).

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { createOverlay, plainQemuArgs } from '../../scripts/guest-image/qemu-command.ts';
import { until } from '../wait.ts';

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
  let qmp: QmpLines | undefined;
  const stop = async (): Promise<void> => {
    qmp?.close();
    if (running) {
      qemu.kill('SIGKILL');
      await exited;
    }
  };
  try {
    qmp = await until(
      () => `QEMU's QMP socket ${qmpSocket} (stderr: ${stderr.trim()})`,
      async () => {
        if (!running) throw new Error(`QEMU exited: ${stderr.trim()}`);
        return QmpLines.connect(qmpSocket);
      },
      { timeoutMs: 20_000, intervalMs: 50 },
    );
    await qmp.command('qmp_capabilities');
    // The host port QEMU picked for the forward (hostfwd with port 0), from the user-mode network's table.
    const table = String(await qmp.command('human-monitor-command', { 'command-line': 'info usernet' }));
    const forward = /HOST_FORWARD\]\s+\d+\s+127\.0\.0\.1\s+(\d+)\s+10\.0\.2\.15\s+80\b/.exec(table);
    if (!forward) throw new Error(`no host forward to the guest's port 80 in:\n${table}`);
    const guest = qmp;
    return {
      process: qemu,
      httpPort: Number(forward[1]),
      console: readConsole,
      qmp: (execute, args) => guest.command(execute, args),
      exited,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A minimal QMP client: one JSON object per line; events are skipped, replies come back in order. */
class QmpLines {
  #socket: Socket;
  #buffer = '';
  #waiting: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding('utf8').on('data', (d: string) => this.#onData(d));
    socket.on('close', () => {
      for (const w of this.#waiting.splice(0)) w.reject(new Error('the QMP connection closed'));
    });
  }

  static async connect(path: string): Promise<QmpLines> {
    const socket = createConnection(path);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const client = new QmpLines(socket);
    await new Promise((resolve, reject) => client.#waiting.push({ resolve, reject })); // the greeting
    return client;
  }

  command(execute: string, args?: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#socket.write(`${JSON.stringify({ execute, ...(args ? { arguments: args } : {}) })}\n`);
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  #onData(data: string): void {
    this.#buffer += data;
    for (let nl = this.#buffer.indexOf('\n'); nl >= 0; nl = this.#buffer.indexOf('\n')) {
      const line = this.#buffer.slice(0, nl).trim();
      this.#buffer = this.#buffer.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line) as {
        QMP?: unknown;
        return?: unknown;
        error?: { desc: string };
        event?: string;
      };
      if (msg.event) continue;
      const w = this.#waiting.shift();
      if (!w) continue;
      if (msg.error) w.reject(new Error(`QMP: ${msg.error.desc}`));
      else w.resolve(msg.QMP ?? msg.return);
    }
  }
}
