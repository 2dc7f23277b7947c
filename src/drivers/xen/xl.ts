// The `xl` toolstack as the Xen driver uses it: each call one `xl` process with a timeout, its complaint
// (the last lines of its stderr) in the error. Reads go through xl-list.ts's readers. Names are the
// domain ids (domainIdFor), which are also the Xen domain names: unique on a host, stable across restarts.

import { execFile, spawn } from 'node:child_process';
import { readFile, rename, stat } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { promisify } from 'node:util';
import { parseXlList, type XlListRow } from './xl-list.ts';

const run = promisify(execFile);

const CALL_TIMEOUT_MS = 120_000;
/** A live move copies the guest's memory while it runs: minutes for a big, busy guest. */
const MIGRATE_TIMEOUT_MS = 30 * 60_000;
/** What of xl's complaint an error keeps. */
const STDERR_KEPT = 64 * 1024;

/** Where xl's per-domain monitor process logs (it watches the domain and acts on its shutdown). */
export const XL_LOG_DIR = '/var/log/xen';
/** Where xenconsoled writes each guest's console (`--log=guest`). */
export const CONSOLE_LOG_DIR = '/var/log/xen/console';
/** libxl's run directory: the QMP sockets of the QEMUs it starts (`qmp-libxl-<domid>`). */
export const XL_RUN_DIR = '/var/run/xen';
/** The name a domain has while `xl migrate-receive` takes it in, and its logs keep. */
const INCOMING_SUFFIX = '--incoming';

/** Xen's shutdown reasons (SHUTDOWN_* in xen/include/public/sched.h), as xl logs them. */
export const SHUTDOWN_REASONS = ['poweroff', 'reboot', 'suspend', 'crash', 'watchdog', 'soft_reset'];
export const SHUTDOWN_CRASH = 3;

/** How a staged domain comes to exist, paused: `xl create`, `xl restore` or `xl migrate-receive`. */
export interface XlMake {
  verb: 'create' | 'restore' | 'migrate-receive';
  run(signal?: AbortSignal): Promise<void>;
}

export class XlError extends Error {
  readonly args: string[];
  readonly stderr: string;

  constructor(args: string[], stderr: string, options?: { cause?: unknown }) {
    const said = stderr.trim().split('\n').slice(-3).join(' / ') || (options?.cause as Error)?.message;
    super(`xl ${args.join(' ')} failed: ${said}`, options);
    this.name = 'XlError';
    this.args = args;
    this.stderr = stderr;
  }
}

export interface XlCallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** What ends xl when `signal` aborts or the time is up (SIGTERM). */
  killSignal?: NodeJS.Signals;
}

/** How the domain's last run ended, as xl's monitor process wrote it in its log. */
export interface XlShutdown {
  /** Xen's shutdown reason code (0 poweroff ... 3 crash ...), absent when it was destroyed. */
  reason?: number;
  destroyed: boolean;
  at: string;
}

export class Xl {
  private readonly binary: string;

  constructor(binary = 'xl') {
    this.binary = binary;
  }

  async call(args: string[], options: XlCallOptions = {}): Promise<string> {
    try {
      const { stdout } = await run(this.binary, args, {
        timeout: options.timeoutMs ?? CALL_TIMEOUT_MS,
        signal: options.signal,
        killSignal: options.killSignal,
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout;
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw new XlError(args, (err as { stderr?: string }).stderr ?? '', { cause: err });
    }
  }

  async list(options: XlCallOptions = {}): Promise<XlListRow[]> {
    return parseXlList(await this.call(['list'], options));
  }

  async row(name: string, options: XlCallOptions = {}): Promise<XlListRow | undefined> {
    return (await this.list(options)).find((r) => r.name === name);
  }

  /** Creates the domain paused (`-p`): the driver writes what the guest reads from xenstore, then unpauses. */
  async createPaused(configPath: string, options: XlCallOptions = {}): Promise<void> {
    await this.call(['create', '-p', configPath], options);
  }

  /** Restores a saved domain paused, with `configPath` in place of the config saved with it (this host's
   *  disk paths). */
  async restorePaused(configPath: string, checkpoint: string, options: XlCallOptions = {}): Promise<void> {
    await this.call(['restore', '-p', configPath, checkpoint], options);
  }

  /** Suspends the domain into `file` (its memory and CPU state); the domain is gone afterwards. */
  async save(name: string, file: string, options: XlCallOptions = {}): Promise<void> {
    await this.call(['save', name, file], options);
  }

  /** `xl migrate` with no ssh: xl runs `rune` with `sh -c`, its stdin and stdout the stream to and from
   *  `xl migrate-receive` on the destination, and sends `configPath` as the domain's config there.
   *  Resolves once the destination reports the domain there; xl has destroyed the source by then. When
   *  it fails before the destination was told to go, xl resumes the source domain. `signal` kills it
   *  (SIGKILL: nothing of xl's runs after, the source's domain stays as it was). */
  async migrate(name: string, configPath: string, rune: string, options: XlCallOptions = {}): Promise<void> {
    await this.call(['migrate', '-s', '', '-C', configPath, name, rune], {
      killSignal: 'SIGKILL',
      ...options,
      timeoutMs: options.timeoutMs ?? MIGRATE_TIMEOUT_MS,
    });
  }

  /** `xl migrate-receive -p` speaking through `stream`: the domain arrives paused, under its own name
   *  once the source said go (`NAME--incoming` until then). Resolves when xl exits content. */
  migrateReceive(stream: Duplex, options: XlCallOptions = {}): Promise<void> {
    const args = ['migrate-receive', '-p'];
    const child = spawn(this.binary, args, { stdio: ['pipe', 'pipe', 'pipe'], signal: options.signal });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr = (stderr + s).slice(-STDERR_KEPT);
    });
    // A broken stream is a failed move: xl learns it from its stdin and stdout going away.
    child.stdin.on('error', () => {});
    stream.on('error', () => child.kill('SIGTERM'));
    stream.pipe(child.stdin);
    child.stdout.pipe(stream);
    return new Promise((resolve, reject) => {
      child.on('error', (err) => reject(new XlError(args, stderr, { cause: err })));
      child.on('close', (code, signal) => {
        if (code === 0) resolve();
        else reject(new XlError(args, stderr || `exited with ${signal ?? `code ${code}`}`));
      });
    });
  }

  /** A domain that came by `xl migrate-receive` was named `NAME--incoming` when xl's monitor and
   *  xenconsoled opened its logs: the files take the domain's own name (both keep writing to them). */
  async adoptIncomingLogs(name: string): Promise<void> {
    for (const [dir, prefix] of [
      [XL_LOG_DIR, 'xl-'],
      [CONSOLE_LOG_DIR, 'guest-'],
    ]) {
      await rename(`${dir}/${prefix}${name}${INCOMING_SUFFIX}.log`, `${dir}/${prefix}${name}.log`).catch(
        (err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        },
      );
    }
  }

  async unpause(name: string, options: XlCallOptions = {}): Promise<void> {
    await this.call(['unpause', name], options);
  }

  /** Asks the guest to power off and waits up to `graceMs`; true when it did. */
  async shutdown(name: string, graceMs: number, options: XlCallOptions = {}): Promise<boolean> {
    try {
      await this.call(['shutdown', '-w', name], { ...options, timeoutMs: Math.max(1, graceMs) });
      return true;
    } catch (err) {
      if (options.signal?.aborted) throw err;
      return false;
    }
  }

  /** Destroys the domain at once; a domain that is already gone is fine. */
  async destroy(name: string, options: XlCallOptions = {}): Promise<void> {
    try {
      await this.call(['destroy', name], options);
    } catch (err) {
      if ((await this.row(name, options)) === undefined) return;
      throw err;
    }
  }

  /** How the domain `name`'s last run ended, from xl's monitor log; undefined when it says nothing. */
  async lastShutdown(name: string): Promise<XlShutdown | undefined> {
    const path = `${XL_LOG_DIR}/xl-${name}.log`;
    const text = await readFile(path, 'utf8').catch(() => '');
    const at = await stat(path).then(
      (s) => s.mtime.toISOString(),
      () => new Date().toISOString(),
    );
    const reasons = [...text.matchAll(/has shut down, reason code (\d+)/g)];
    if (reasons.length > 0) return { reason: Number(reasons.at(-1)![1]), destroyed: false, at };
    if (/has been destroyed/.test(text)) return { destroyed: true, at };
    return undefined;
  }
}
