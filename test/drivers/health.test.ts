// Health probes against real sockets on 127.0.0.1: tcp connect, http status classes (redirects count as
// healthy and are not followed), timeouts, unknown ports, and abort.

import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type HealthTarget, probeHealth } from '../../src/drivers/health.ts';

describe('probeHealth', () => {
  const servers: (Server | TcpServer)[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    sockets.length = 0;
    for (const s of servers) {
      if ('closeAllConnections' in s) s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    servers.length = 0;
  });

  async function listen<T extends Server | TcpServer>(server: T): Promise<number> {
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as { port: number }).port;
  }

  function target(ports: Record<string, number>): HealthTarget {
    return { resolvePort: (name) => (ports[name] ? { address: '127.0.0.1', port: ports[name] } : undefined) };
  }

  async function closedPort(): Promise<number> {
    const s = createTcpServer();
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    const port = (s.address() as { port: number }).port;
    await new Promise((r) => s.close(r));
    return port;
  }

  it('tcp: ok when a connection is accepted, not ok when refused', async () => {
    const port = await listen(createTcpServer((s) => sockets.push(s)));
    expect(await probeHealth({ tcp: { port: 'main' } }, target({ main: port }))).toEqual({
      ok: true,
      message: `tcp 127.0.0.1:${port}: connected`,
    });
    const closed = await closedPort();
    const r = await probeHealth({ tcp: { port: 'main' } }, target({ main: closed }));
    expect(r.ok).toBe(false);
    expect(r.message).toContain('ECONNREFUSED');
  });

  it('http: 2xx and 3xx are healthy, 5xx is not, and the path is used', async () => {
    const seen: string[] = [];
    const port = await listen(
      createServer((req, res) => {
        seen.push(req.url!);
        if (req.url === '/redirect') res.writeHead(302, { location: '/broken' }).end();
        else if (req.url === '/broken') res.writeHead(503).end();
        else res.end('ok');
      }),
    );
    const t = target({ web: port });
    expect(await probeHealth({ http: { port: 'web', path: '/healthz' } }, t)).toMatchObject({ ok: true });
    expect(await probeHealth({ http: { port: 'web', path: '/redirect' } }, t)).toMatchObject({ ok: true });
    expect(await probeHealth({ http: { port: 'web', path: '/broken' } }, t)).toEqual({
      ok: false,
      message: `http GET http://127.0.0.1:${port}/broken: 503 (want 2xx or 3xx)`,
    });
    expect(seen).toEqual(['/healthz', '/redirect', '/broken']);
  });

  it('http: a server that never answers fails after the timeout', async () => {
    const port = await listen(createServer(() => {}));
    const r = await probeHealth({ http: { port: 'web' }, timeoutSeconds: 0.2 }, target({ web: port }));
    expect(r).toEqual({ ok: false, message: `http GET http://127.0.0.1:${port}/: no answer within 200 ms` });
  });

  it('names a port the domain does not have, and a check with no kind', async () => {
    expect(await probeHealth({ tcp: { port: 'nope' } }, target({}))).toEqual({
      ok: false,
      message: `the health check's port "nope" is not a port of this domain`,
    });
    expect((await probeHealth({}, target({}))).ok).toBe(false);
    expect(await probeHealth({ exec: { command: ['true'] } }, target({}))).toEqual({
      ok: false,
      message: 'this driver cannot run exec checks in its domains',
    });
  });

  it('rejects when aborted', async () => {
    const port = await listen(createServer(() => {}));
    const abort = new AbortController();
    const pending = probeHealth({ http: { port: 'web' }, timeoutSeconds: 30 }, target({ web: port }), {
      signal: abort.signal,
    });
    abort.abort(new Error('shutting down'));
    await expect(pending).rejects.toThrow('shutting down');
  });
});
