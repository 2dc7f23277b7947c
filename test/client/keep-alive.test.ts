// The client keeps connections alive between requests; a server may close one as idle just as the next
// request goes out on it. That request was never read, so the client sends it again on a fresh
// connection, once; a reset on a fresh connection, or a second one, is the caller's error.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { XenosClient } from '../../src/client/client.ts';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

/** A server that answers `{n}` and resets the connection instead when `reset(n, reused)` says so. */
async function serve(reset: (n: number, reused: boolean) => boolean): Promise<string> {
  let n = 0;
  const seen = new WeakSet<object>();
  server = createServer((req, res) => {
    n += 1;
    const reused = seen.has(req.socket);
    seen.add(req.socket);
    if (reset(n, reused)) {
      req.socket.resetAndDestroy();
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ n }));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

it('sends a request again when a kept-alive connection was reset under it', async () => {
  const url = await serve((n, reused) => n === 2 && reused);
  const client = new XenosClient({ server: url });
  expect(await client.request('GET', '/a')).toEqual({ n: 1 });
  // The second request goes out on the first one's connection, which the server resets unread.
  expect(await client.request('POST', '/b', { body: {} })).toEqual({ n: 3 });
  client.close();
});

it('does not hide a reset on a fresh connection, nor a second one', async () => {
  const fresh = new XenosClient({ server: await serve(() => true) });
  await expect(fresh.request('GET', '/a')).rejects.toThrow(/connection reset/);
  fresh.close();
  await new Promise((r) => server?.close(r));
  const twice = new XenosClient({ server: await serve((n) => n > 1) });
  await twice.request('GET', '/a');
  await expect(twice.request('GET', '/b')).rejects.toThrow(/connection reset/);
  twice.close();
});
