// URL imports under the host's policy, against real HTTP servers on loopback: special addresses are
// refused by default — as a literal, by name at connect time, after a redirect, when a name answers
// differently from one connection to the next (DNS rebinding) — and nothing reaches a refused server;
// the size cap holds whether or not the server announces a length; a stalled download ends; stopping
// aborts at once; redirects are bounded and stay on http(s). Errors name what was refused and the flag.

import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { UrlPolicy } from '../../src/images/download.ts';
import { ImageAddressRefusedError, ImageSourceError, ImageTooLargeError } from '../../src/images/errors.ts';
import { importImage } from '../../src/images/import-image.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

describe('URL import policy', () => {
  let root: string;
  let cacheDir: string;
  const servers: Server[] = [];

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'xenos-download-'));
    cacheDir = join(root, 'cache');
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    await rm(root, { recursive: true, force: true });
  });

  /** An HTTP server on `host`; counts the TCP connections it accepts. */
  async function serve(host: string, handler: Handler, port = 0) {
    const server = createServer(handler);
    let connections = 0;
    server.on('connection', () => connections++);
    server.listen(port, host);
    await once(server, 'listening');
    servers.push(server);
    const p = (server.address() as { port: number }).port;
    return {
      port: p,
      base: `http://${host.includes(':') ? `[${host}]` : host}:${p}`,
      connections: () => connections,
    };
  }

  const ok: Handler = (_req, res) => res.writeHead(200, { 'content-length': 5 }).end('image');
  const fetchIt = (url: string, policy: UrlPolicy = {}, signal?: AbortSignal) =>
    importImage({ url }, undefined, { cacheDir, url: policy, signal });

  async function nothingCached(): Promise<void> {
    expect(await readdir(join(cacheDir, 'sha256')).catch(() => [])).toEqual([]);
    expect(await readdir(join(cacheDir, 'tmp')).catch(() => [])).toEqual([]);
  }

  it('refuses loopback by literal and by name, before any connection, naming the flag', async () => {
    const v4 = await serve('127.0.0.1', ok);
    await expect(fetchIt(`${v4.base}/img`)).rejects.toThrow(
      `image ${v4.base}/img: refused to connect to 127.0.0.1, a loopback address; ` +
        'image URLs must lead to public addresses unless xenosd runs with --allow-private-image-urls',
    );
    // By name: the check runs on what `localhost` resolves to, in the connection's own lookup.
    const err = await fetchIt(`http://localhost:${v4.port}/img`).catch((e) => e);
    expect(err).toBeInstanceOf(ImageAddressRefusedError);
    expect(err.message).toMatch(/refused to connect to localhost \((127\.0\.0\.1|::1)\), a loopback address/);
    const v6 = await serve('::1', ok);
    await expect(fetchIt(`${v6.base}/img`)).rejects.toThrow('refused to connect to ::1, a loopback address');
    expect(v4.connections() + v6.connections()).toBe(0);
    await nothingCached();
    // The host allows it: the same URL imports.
    expect((await fetchIt(`${v4.base}/img`, { allowPrivateAddresses: true })).size).toBe(5);
  });

  it('re-checks every redirect: an allowed server cannot bounce the import to a refused one', async () => {
    const inner = await serve('127.0.0.1', ok);
    // 127.0.0.2 stands for a public server (allowed by address); it redirects to the loopback one.
    const outer = await serve('127.0.0.2', (_req, res) =>
      res.writeHead(302, { location: `${inner.base}/secret` }).end(),
    );
    const policy = { allowedAddresses: ['127.0.0.2'] };
    await expect(fetchIt(`${outer.base}/img`, policy)).rejects.toThrow(
      'refused to connect to 127.0.0.1, a loopback address',
    );
    expect(outer.connections()).toBe(1);
    expect(inner.connections()).toBe(0);
    await nothingCached();
  });

  it('checks the address each connection really uses, so DNS rebinding gains nothing', async () => {
    // One port on two addresses: the "public" server (127.0.0.2) and the private one (127.0.0.1).
    const publicSide = await serve('127.0.0.2', (req, res) =>
      req.url === '/img' ? res.writeHead(302, { location: '/again' }).end() : ok(req, res),
    );
    const privateSide = await serve('127.0.0.1', ok, publicSide.port);
    let lookups = 0;
    // The name answers "public" once, then "private" from then on (a rebinding DNS server).
    const lookup = ((
      _host: string,
      _opts: unknown,
      cb: (e: null, a: { address: string; family: number }[]) => void,
    ) => {
      lookups++;
      cb(null, [{ address: lookups === 1 ? '127.0.0.2' : '127.0.0.1', family: 4 }]);
    }) as unknown as UrlPolicy['lookup'];
    await expect(
      fetchIt(`http://images.example:${publicSide.port}/img`, { allowedAddresses: ['127.0.0.2'], lookup }),
    ).rejects.toThrow('refused to connect to images.example (127.0.0.1), a loopback address');
    expect(lookups).toBe(2);
    expect(privateSide.connections()).toBe(0);
  });

  it('refuses an image above the size cap, announced or not, and keeps nothing', async () => {
    const body = Buffer.alloc(64 * 1024, 1);
    const announced = await serve('127.0.0.1', (_req, res) =>
      res.writeHead(200, { 'content-length': body.length }).end(body),
    );
    const policy = { allowPrivateAddresses: true, maxBytes: 10_000 };
    const err = await fetchIt(`${announced.base}/big`, policy).catch((e) => e);
    expect(err).toBeInstanceOf(ImageTooLargeError);
    expect(err.message).toBe(
      `image ${announced.base}/big: the server announces 65536 bytes, more than the 10000 bytes this host imports; raise xenosd's --max-image-size to import it`,
    );
    // No Content-Length (chunked): cut off while streaming.
    const chunked = await serve('127.0.0.1', (_req, res) => {
      res.writeHead(200);
      res.write(body);
      res.end(body);
    });
    await expect(fetchIt(`${chunked.base}/big`, policy)).rejects.toThrow(
      'the server sent more, more than the 10000 bytes this host imports',
    );
    await nothingCached();
    expect((await fetchIt(`${announced.base}/big`, { ...policy, maxBytes: body.length })).size).toBe(
      body.length,
    );
  });

  it('ends a stalled download, and stops at once when aborted', async () => {
    const stalled = await serve('127.0.0.1', (_req, res) => {
      res.writeHead(200, { 'content-length': 1000 });
      res.write('x'); // then nothing
    });
    const policy = { allowPrivateAddresses: true, stallWindowMs: 300, stallBytes: 100 };
    const started = Date.now();
    await expect(fetchIt(`${stalled.base}/img`, policy)).rejects.toThrow(
      /the download stalled: \d+ bytes in the last 0.3 s \(less than 100\)/,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    const stop = new AbortController();
    const pending = fetchIt(`${stalled.base}/img`, { allowPrivateAddresses: true }, stop.signal);
    await expect.poll(() => stalled.connections()).toBe(2);
    const aborted = Date.now();
    stop.abort(new Error('xenosd stopping'));
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    expect(Date.now() - aborted).toBeLessThan(1_000);
    await nothingCached();
  });

  it('bounds redirects and follows them only to http(s)', async () => {
    const loop = await serve('127.0.0.1', (req, res) => res.writeHead(302, { location: req.url! }).end());
    const policy = { allowPrivateAddresses: true };
    await expect(fetchIt(`${loop.base}/a`, policy)).rejects.toThrow('more than 5 redirects');
    const toFile = await serve('127.0.0.1', (_req, res) =>
      res.writeHead(301, { location: 'file:///etc/shadow' }).end(),
    );
    const err = await fetchIt(`${toFile.base}/a`, policy).catch((e) => e);
    expect(err).toBeInstanceOf(ImageSourceError);
    expect(err.message).toBe(
      `image ${toFile.base}/a: redirected to file:///etc/shadow: only http:// and https:// URLs can be imported`,
    );
  });
});
