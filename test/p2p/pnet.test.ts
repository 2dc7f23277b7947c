// The private network: only hosts holding the cluster key connect, and bulk traffic through the protector
// neither crashes nor corrupts. Set XENOS_TEST_UPSTREAM_PNET=1 to run the same tests against @libp2p/pnet's own
// protector (3.0.27: the bulk test fails with `RangeError: WebAssembly.Memory.grow(): Maximum memory size
// exceeded`).

import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Stream } from '@libp2p/interface';
import { preSharedKey } from '@libp2p/pnet';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterKeyError } from '../../src/p2p/errors.ts';
import { createClusterKey, loadClusterKey } from '../../src/p2p/pnet/cluster-key.ts';
import { TestNet } from './cluster.ts';

const upstream = process.env.XENOS_TEST_UPSTREAM_PNET === '1';
const protector = upstream ? { connectionProtector: (psk: Uint8Array) => preSharedKey({ psk }) } : {};

const BULK_PROTOCOL = '/xenos/test/bulk/1.0.0';
const MiB = 1024 * 1024;
const BULK_BYTES = 256 * MiB; // upstream pnet 3.0.27 dies after ~50 MiB here
const SEND_CAP = 4 * MiB;

const net = new TestNet();
afterEach(() => net.cleanup());

describe('cluster key', () => {
  it('is created once in the swarm.key v1 format with mode 0600, then loaded unchanged', async () => {
    const file = join(await net.tempDir(), 'keys', 'swarm.key');
    const first = await createClusterKey(file);
    expect(first.created).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readFile(file, 'utf8')).split('\n').slice(0, 2)).toEqual([
      '/key/swarm/psk/1.0.0/',
      '/base16/',
    ]);
    const again = await createClusterKey(file);
    expect(again.created).toBe(false);
    expect(Buffer.from(again.psk).equals(Buffer.from(first.psk))).toBe(true);
    expect(Buffer.from((await loadClusterKey(file)).psk).equals(Buffer.from(first.psk))).toBe(true);
  });

  it('rejects a malformed or missing key file with the file and the line', async () => {
    const file = join(await net.tempDir(), 'swarm.key');
    await expect(loadClusterKey(file)).rejects.toThrow(/swarm\.key: file not found/);
    await writeFile(file, '/key/swarm/psk/1.0.0/\n/base16/\nabc\n');
    await expect(loadClusterKey(file)).rejects.toThrow(ClusterKeyError);
    await expect(loadClusterKey(file)).rejects.toThrow(/line 3 must be 64 hex digits/);
  });
});

describe('private network', () => {
  it('connects hosts with the same key and refuses a host with another key or none', async () => {
    const keyFile = await net.clusterKeyFile();
    const a = await net.startHost({ clusterKeyFile: keyFile, ...protector });
    const b = await net.startHost({ clusterKeyFile: keyFile, ...protector });
    await b.node.dial(a.node.multiaddrs[0]);
    expect(b.node.connectedPeers()).toContain(a.node.peerId.toString());

    const other = await net.startHost({ clusterKeyFile: await net.clusterKeyFile(), ...protector });
    await expect(other.node.dial(a.node.multiaddrs[0], { timeout: 3000 })).rejects.toThrow();
    const open = await net.startHost({ clusterKeyFile: null });
    await expect(open.node.dial(a.node.multiaddrs[0], { timeout: 3000 })).rejects.toThrow();
    await expect(a.node.dial(open.node.multiaddrs[0], { timeout: 3000 })).rejects.toThrow();

    expect(a.node.connectedPeers()).toEqual([b.node.peerId.toString()]);
    expect(other.node.connectedPeers()).toEqual([]);
    expect(open.node.connectedPeers()).toEqual([]);
  });

  it(`carries ${BULK_BYTES / MiB} MiB on one stream unchanged, with backpressure`, async () => {
    const keyFile = await net.clusterKeyFile();
    const receiver = await net.startHost({ clusterKeyFile: keyFile, ...protector });
    const sender = await net.startHost({ clusterKeyFile: keyFile, ...protector });

    // Receiver: hash everything, answer with the digest when the sender closes its side.
    let received = 0;
    await receiver.node.handle(BULK_PROTOCOL, (stream) => {
      stream.maxReadBufferLength = 64 * MiB;
      const hash = createHash('sha256');
      stream.addEventListener('message', (evt) => {
        const data = evt.data;
        received += data.byteLength;
        if (data instanceof Uint8Array) hash.update(data);
        else for (const buf of data) hash.update(buf);
      });
      stream.addEventListener('remoteCloseWrite', () => {
        stream.send(hash.digest());
        stream.close().catch(() => {});
      });
    });

    const stream = await sender.node.dialProtocol(receiver.node.multiaddrs[0], BULK_PROTOCOL);
    let sent = 0;
    // A broken cipher does not always reset the connection: the bytes just stop. Fail on 5 s without progress.
    const stalled = watchProgress(
      () => sent + received,
      5000,
      () => `sent ${sent / MiB} MiB, received ${(received / MiB).toFixed(1)} MiB`,
    );
    const reply = Promise.race([readAll(stream), stalled.promise]);
    const expected = createHash('sha256');
    const block = new Uint8Array(MiB);
    for (; sent < BULK_BYTES; sent += MiB) {
      // Different bytes in every block, so a desynchronised cipher cannot go unnoticed.
      crypto.getRandomValues(block.subarray(0, 65536));
      block.copyWithin(65536, 0, MiB - 65536);
      const copy = block.slice();
      expected.update(copy);
      stream.send(copy);
      while (stream.writeBufferLength > SEND_CAP) await Promise.race([drained(stream), stalled.promise]);
    }
    try {
      await Promise.race([stream.close(), stalled.promise]);
      expect(Buffer.from(await reply).toString('hex')).toBe(expected.digest('hex'));
    } finally {
      stalled.cancel();
    }
    expect(received).toBe(BULK_BYTES);
  }, 60_000);
});

/** A promise that rejects once `progress()` has not changed for `ms`. */
function watchProgress(progress: () => number, ms: number, describe: () => string) {
  let last = -1;
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      const now = progress();
      if (now === last) reject(new Error(`bulk transfer stalled for ${ms} ms: ${describe()}`));
      last = now;
    }, ms);
  });
  promise.catch(() => {});
  return { promise, cancel: () => clearInterval(timer) };
}

function drained(stream: Stream): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      stream.removeEventListener('drain', done);
      stream.removeEventListener('idle', done);
      stream.removeEventListener('close', closed);
      resolve();
    };
    const closed = () => reject(new Error(`stream closed while sending (${stream.status})`));
    stream.addEventListener('drain', done);
    stream.addEventListener('idle', done);
    stream.addEventListener('close', closed);
  });
}

async function readAll(stream: Stream): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of stream) parts.push(chunk instanceof Uint8Array ? chunk : chunk.subarray());
  return Buffer.concat(parts);
}
