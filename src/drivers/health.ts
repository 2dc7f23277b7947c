// Health checks of a domain's service, as the template's `healthCheck` describes them: tcp (a connection is
// accepted), http (GET path answers 2xx or 3xx; redirects are not followed, as in Kubernetes) and exec (a
// command run in the domain's context exits 0). One probe = one attempt with a timeout; thresholds and
// periods are the controller's business.

import { request } from 'node:http';
import { request as requestTls } from 'node:https';
import { connect } from 'node:net';
import type { HealthCheckSpec } from '../model/service-template.ts';
import type { DomainInfo, Driver, ExecResult } from './driver.ts';

export interface HealthResult {
  ok: boolean;
  message: string;
}

/** Where a check's `port` (a port name or number) is reached, and how to run an exec check. */
export interface HealthTarget {
  resolvePort(port: string): { address: string; port: number; url?: string } | undefined;
  exec?(command: string[], options: { signal?: AbortSignal; timeoutMs: number }): Promise<ExecResult>;
}

const DEFAULT_TIMEOUT_SECONDS = 1;

/** The target for a domain as its driver reports it: endpoints by name, or by the port inside the domain. */
export function healthTargetFor(driver: Driver, info: DomainInfo): HealthTarget {
  return {
    resolvePort(port) {
      const byName = info.endpoints.find((e) => e.name === port);
      if (byName) return byName;
      const n = Number(port);
      if (!Number.isInteger(n)) return undefined;
      const byGuest = info.endpoints.find((e) => e.guestPort === n);
      return byGuest ?? { address: info.endpoints[0]?.address ?? '127.0.0.1', port: n };
    },
    exec: driver.exec ? (command, options) => driver.exec!(info.id, command, options) : undefined,
  };
}

/** Runs one attempt of `check`. Never throws for a failing service; rejects only when `signal` aborts. */
export async function probeHealth(
  check: HealthCheckSpec,
  target: HealthTarget,
  options: { signal?: AbortSignal } = {},
): Promise<HealthResult> {
  const timeoutMs = (check.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000;
  options.signal?.throwIfAborted();
  if (check.exec) {
    if (!target.exec) return { ok: false, message: 'this driver cannot run exec checks in its domains' };
    const r = await target.exec(check.exec.command, { signal: options.signal, timeoutMs });
    if (r.exitCode === 0) return { ok: true, message: `exec ${check.exec.command[0]}: exit 0` };
    const why = r.signal
      ? `killed by ${r.signal}${r.signal === 'SIGTERM' ? ` (timeout ${timeoutMs} ms?)` : ''}`
      : `exit ${r.exitCode}`;
    const out = (r.stderr || r.stdout).trim().slice(0, 200);
    return { ok: false, message: `exec ${check.exec.command[0]}: ${why}${out ? `: ${out}` : ''}` };
  }
  const portRef = check.tcp?.port ?? check.http?.port;
  if (portRef === undefined)
    return { ok: false, message: 'the health check names no tcp, http or exec check' };
  const where = target.resolvePort(String(portRef));
  if (!where)
    return { ok: false, message: `the health check's port "${portRef}" is not a port of this domain` };
  if (check.tcp) return tcpProbe(where.address, where.port, timeoutMs, options.signal);
  const path = check.http?.path ?? '/';
  const tls = where.url?.startsWith('https:') ?? false;
  return httpProbe(tls, where.address, where.port, path, timeoutMs, options.signal);
}

function tcpProbe(
  address: string,
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<HealthResult> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port, timeout: timeoutMs });
    const done = (result: HealthResult | Error) => {
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onAbort = () => done(signal!.reason as Error);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => done({ ok: true, message: `tcp ${address}:${port}: connected` }));
    socket.once('timeout', () =>
      done({ ok: false, message: `tcp ${address}:${port}: no connection within ${timeoutMs} ms` }),
    );
    socket.once('error', (err) => done({ ok: false, message: `tcp ${address}:${port}: ${err.message}` }));
  });
}

function httpProbe(
  tls: boolean,
  address: string,
  port: number,
  path: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<HealthResult> {
  const what = `http GET ${tls ? 'https' : 'http'}://${address}:${port}${path}`;
  return new Promise((resolve, reject) => {
    const req = (tls ? requestTls : request)({
      host: address,
      port,
      path,
      method: 'GET',
      agent: false,
      timeout: timeoutMs,
      headers: { 'user-agent': 'xenos-health/1' },
      rejectUnauthorized: false,
    });
    let settled = false;
    const done = (result: HealthResult | Error) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      req.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onAbort = () => done(signal!.reason as Error);
    signal?.addEventListener('abort', onAbort, { once: true });
    req.once('response', (res) => {
      const code = res.statusCode ?? 0;
      res.resume();
      done(
        code >= 200 && code < 400
          ? { ok: true, message: `${what}: ${code}` }
          : { ok: false, message: `${what}: ${code} (want 2xx or 3xx)` },
      );
    });
    req.once('timeout', () => done({ ok: false, message: `${what}: no answer within ${timeoutMs} ms` }));
    req.once('error', (err) => done({ ok: false, message: `${what}: ${err.message}` }));
    req.end();
  });
}
