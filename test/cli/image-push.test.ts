// A push whose connection breaks mid-piece resumes by itself from where the host stands: a real xenosd
// behind a TCP proxy on loopback that cuts the first connection once 6 MiB have gone through; the push
// of a 12 MiB file in 4 MiB pieces still lands with the right digest, and sends far less than twice the
// file (it went on from the host's offset instead of starting over).

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pushImage } from '../../src/cli/image-push.ts';
import { XenosClient } from '../../src/client/client.ts';
import { removeDataDir, startXenosd, type XenosdProcess } from '../daemon/xenosd-process.ts';

const MiB = 1024 * 1024;
let xenosd: XenosdProcess;
let proxy: Server;
let dir: string;
const sockets = new Set<Socket>();
const traffic = { connections: 0, cuts: 0, bytes: 0 };

beforeAll(async () => {
  xenosd = await startXenosd();
  dir = mkdtempSync(join(tmpdir(), 'image-push-'));
  const upstream = new URL(xenosd.url);
  proxy = createServer((client) => {
    const n = ++traffic.connections;
    const server = createConnection({ host: upstream.hostname, port: Number(upstream.port) });
    sockets.add(client).add(server);
    let forwarded = 0;
    client.on('data', (d: Buffer) => {
      forwarded += d.length;
      traffic.bytes += d.length;
      if (n === 1 && forwarded > 6 * MiB && traffic.cuts === 0) {
        traffic.cuts++;
        client.destroy();
        server.destroy();
        return;
      }
      server.write(d);
    });
    server.on('data', (d: Buffer) => client.write(d));
    const end = () => {
      client.destroy();
      server.destroy();
    };
    client.on('close', end).on('error', end);
    server.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => proxy?.close(r));
  await xenosd?.stop();
  if (xenosd) removeDataDir(xenosd.dataDir);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('resumes by itself after the connection breaks mid-piece', async () => {
  const body = Buffer.alloc(12 * MiB);
  for (let i = 0; i < body.length; i += 512) body.writeUInt32BE(i, i);
  const file = join(dir, 'disk.raw');
  writeFileSync(file, body);
  const { port } = proxy.address() as { port: number };
  const client = new XenosClient({ server: `http://127.0.0.1:${port}`, token: xenosd.token });
  try {
    const pushed = await pushImage(client, file, { pieceBytes: 4 * MiB });
    expect(pushed.digest).toBe(`sha256:${createHash('sha256').update(body).digest('hex')}`);
    expect(pushed.uploaded).toBe(true);
  } finally {
    client.close();
  }
  expect(traffic.cuts).toBe(1);
  expect(traffic.connections).toBeGreaterThan(1);
  // The file once, plus at most the piece the cut broke and the requests around it.
  expect(traffic.bytes).toBeLessThan(17 * MiB);
});
