// Test helper: runs a real xenosd child process on 127.0.0.1 with a free port and a temp data dir,
// waits until /healthz answers, and stops it (SIGTERM, then SIGKILL) when the test is done.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LogLine } from '../log-capture.ts';
import { unmountUnder } from '../unmount-under.ts';

export const XENOSD = fileURLToPath(new URL('../../bin/xenosd.js', import.meta.url));

export interface XenosdProcess {
  child: ChildProcess;
  dataDir: string;
  url: string;
  token: string;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** The exit code, once it exited. */
  exited: Promise<number | null>;
  /** fetch with the admin token. */
  api(path: string, init?: RequestInit): Promise<Response>;
}

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'xenosd-test-'));
}

export interface XenosdRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** How to run xenosd: the script (default bin/xenosd.js; a test entry point such as
 *  test/cluster/xenosd-with-faults.ts runs the same daemon with a test hook) and its own leading args. */
export interface XenosdEntry {
  script: string;
  args?: string[];
}

/** Starts `xenosd ARGS` and collects its output. `spawnWith` runs it some other way (e.g. inside a
 *  network namespace); it gets the command and arguments and must pipe stdout and stderr. */
export function runXenosd(
  args: string[],
  opts: { spawnWith?: (command: string, args: string[]) => ChildProcess; entry?: XenosdEntry } = {},
): XenosdRun {
  const entry = opts.entry ?? { script: XENOSD };
  const argv = ['--disable-warning=ExperimentalWarning', entry.script, ...(entry.args ?? []), ...args];
  const child = opts.spawnWith
    ? opts.spawnWith(process.execPath, argv)
    : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** SIGTERM, SIGKILL after 10 s; resolves with the exit code. */
export async function stopXenosd(run: XenosdRun): Promise<number | null> {
  if (run.child.exitCode !== null || run.child.signalCode !== null) return run.child.exitCode;
  run.child.kill('SIGTERM');
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 10_000);
  const code = await run.exited;
  clearTimeout(timer);
  return code;
}

/** fetch against a xenosd API with its admin token. */
export function apiFetch(
  url: string,
  token: string,
  path: string,
  init: RequestInit = {},
): Promise<Response> {
  return fetch(url + path, {
    ...init,
    headers: { Authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) },
  });
}

/** Start xenosd on a free port; resolves once it prints its serving line. */
export async function startXenosd(
  opts: {
    dataDir?: string;
    hostName?: string;
    timeoutMs?: number;
    args?: string[];
    entry?: XenosdEntry;
  } = {},
): Promise<XenosdProcess> {
  const dataDir = opts.dataDir ?? tempDataDir();
  const run = runXenosd(
    [
      '--data-dir',
      dataDir,
      '--api',
      '127.0.0.1:0',
      '--host-name',
      opts.hostName ?? 'test-host',
      ...(opts.args ?? []),
    ],
    { entry: opts.entry },
  );
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let url: string | undefined;
  let exitCode: number | null | undefined;
  run.exited.then((c) => {
    exitCode = c;
  });
  while (!url) {
    const m = /serving API on (\S+)/.exec(run.stdout());
    if (m) url = m[1];
    else if (exitCode !== undefined) throw new Error(`xenosd exited with ${exitCode}: ${run.stderr()}`);
    else if (Date.now() > deadline) {
      run.child.kill('SIGKILL');
      throw new Error(`xenosd did not start in time: ${run.stderr()}`);
    } else {
      // Also wake on exit: a xenosd that fails at once may close stdout before we listen for it.
      await Promise.race([
        new Promise((r) => run.child.stdout!.once('data', r).once('close', r)),
        run.exited,
      ]);
    }
  }
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  return {
    ...run,
    dataDir,
    url,
    token,
    stop: () => stopXenosd(run),
    api: (path, init) => apiFetch(url, token, path, init),
  };
}

export function removeDataDir(dir: string): void {
  unmountUnder(dir); // domains' overlays (as root) outlive a killed xenosd
  rmSync(dir, { recursive: true, force: true });
}

/** xenosd's log lines in `stderr` (JSON, one a line, since stderr is a pipe), parsed; other lines are skipped. */
export function logLines(stderr: string): LogLine[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}
