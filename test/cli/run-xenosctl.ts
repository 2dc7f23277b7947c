// Test helper: runs bin/xenosctl.js as a real child process (the Node running the tests), with a
// clean environment (no user config file, no local data dir), and collects its output and exit code.

import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const XENOSCTL = fileURLToPath(new URL('../../bin/xenosctl.js', import.meta.url));

export interface CtlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CtlOptions {
  /** Added to the clean environment. */
  env?: Record<string, string>;
  stdin?: string;
  cwd?: string;
  timeoutMs?: number;
}

/** A working directory without .xenos/ and a config path that does not exist. */
export function cleanDir(): string {
  return mkdtempSync(join(tmpdir(), 'xenosctl-test-'));
}

const running = new Set<ReturnType<typeof spawn>>();

/** Kills any xenosctl still running (call from afterEach/afterAll). */
export function killAllCtl(): void {
  for (const c of running) c.kill('SIGKILL');
  running.clear();
}

export function xenosctl(args: string[], opts: CtlOptions = {}): Promise<CtlResult> {
  const cwd = opts.cwd ?? cleanDir();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: cwd,
    XENOS_CONFIG: join(cwd, 'no-config.yaml'),
    ...opts.env,
  };
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', XENOSCTL, ...args], {
    cwd,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  child.stdin.end(opts.stdin ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts xenosctl and resolves once its stdout matches `until` (for -w); the caller kills it. */
export function xenosctlUntil(
  args: string[],
  opts: CtlOptions,
): { child: ReturnType<typeof spawn>; output: () => string; waitFor: (re: RegExp) => Promise<string> } {
  const cwd = opts.cwd ?? cleanDir();
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', XENOSCTL, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: cwd, XENOS_CONFIG: join(cwd, 'no-config.yaml'), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const waitFor = (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        if (re.test(out)) {
          child.stdout!.off('data', check);
          resolve(out);
        }
      };
      child.stdout!.on('data', check);
      child.once('close', () => reject(new Error(`xenosctl ended before ${re}: ${out}\n${err}`)));
      check();
    });
  return { child, output: () => out, waitFor };
}
