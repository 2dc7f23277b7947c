// The baseline of the instances-ready bench: the example web service started N times directly, no Xenos —
// the same command the template runs (`node server.mjs` in manifests/web/image, found on the same PATH a
// domain gets), each on a host port allocated the way the process driver allocates them
// (src/drivers/ports.ts, leased machine-wide so no xenosd's domain takes one meanwhile), all spawned at once. Each is timed from its spawn to its first successful HTTP
// answer: its "listening" line on stdout triggers one GET /healthz, so the figure has no polling lag at all
// (the strictest baseline there is). `stop()` kills them all and waits until they are gone.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { HostLeases } from '../../src/drivers/host-leases.ts';
import { allocatePorts } from '../../src/drivers/ports.ts';

const IMAGE = fileURLToPath(new URL('../../manifests/web/image/', import.meta.url));
/** The PATH the process driver gives a domain (ProcessDriverInit.path's default). */
const DOMAIN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface DirectStart {
  /** Spawn → first HTTP 200 of each process, ms (in start order). */
  readyMs: number[];
  /** Processes that never answered, with why. */
  failed: string[];
  stop(): Promise<void>;
}

/** Starts `n` copies of the web service at once and resolves once each has answered (or failed). */
export async function startDirect(n: number, opts: { timeoutMs?: number } = {}): Promise<DirectStart> {
  const reserved = new Set<number>();
  const ports: number[] = [];
  const leases = new HostLeases();
  // The lease holds while this process lives (its owner path never holds a domain record).
  const owner = `/nonexistent/xenos-bench-direct-${process.pid}`;
  for (let i = 0; i < n; i++) {
    const p = await allocatePorts(
      `direct-${i}`,
      [{ name: 'http', port: 8080, protocol: 'TCP' }],
      undefined,
      reserved,
      (port, protocol) => leases.tryTake(`port/${protocol}`, port, owner),
    );
    reserved.add(p.http);
    ports.push(p.http);
  }
  const children: ChildProcess[] = [];
  const failed: string[] = [];
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const one = async (port: number, i: number): Promise<number | undefined> => {
    const t0 = performance.now();
    const child = spawn('node', ['server.mjs'], {
      cwd: IMAGE,
      env: { PATH: DOMAIN_PATH, HOME: IMAGE, PORT: String(port), GREETING: `hello from direct-${i}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    try {
      await listening(child, timeoutMs);
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
      await res.text();
      if (res.status !== 200) throw new Error(`GET /healthz answered ${res.status}`);
      return performance.now() - t0;
    } catch (err) {
      failed.push(`direct-${i} on port ${port}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const results = await Promise.all(ports.map(one));
  return {
    readyMs: results.filter((r): r is number => r !== undefined),
    failed,
    stop: async () => {
      leases.release(owner);
      leases.close();
      await Promise.all(
        children.map(async (c) => {
          if (c.exitCode !== null || c.signalCode !== null) return;
          const gone = once(c, 'exit');
          c.kill('SIGKILL');
          await gone;
        }),
      );
    },
  };
}

/** Resolves when the service prints its "listening" line; rejects when it exits or the time runs out. */
function listening(child: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`not listening after ${timeoutMs} ms`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on('data', (d: Buffer) => {
      if (err.length < 2000) err += d.toString();
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`exited (${signal ?? `code ${code}`}) before listening: ${err.trim().slice(0, 300)}`));
    });
  });
}
