// The private network: only hosts holding the cluster key connect, the bytes on the wire are the protocol
// the protector's header describes (checked from outside, by a client speaking it over a raw socket), a host
// of the previous protocol is refused by name, and bulk traffic neither crashes nor corrupts.

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Stream } from '@libp2p/interface';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterKeyError } from '../../src/p2p/errors.ts';
import { createClusterKey, loadClusterKey } from '../../src/p2p/pnet/cluster-key.ts';
import { keyStream, NONCE_LENGTH, TAG_LENGTH } from '../../src/p2p/pnet/protector.ts';
import { TestNet } from './cluster.ts';

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
    const a = await net.startHost({ clusterKeyFile: keyFile });
    const b = await net.startHost({ clusterKeyFile: keyFile });
    await b.node.dial(a.node.multiaddrs[0]);
    expect(b.node.connectedPeers()).toContain(a.node.peerId.toString());

    const other = await net.startHost({ clusterKeyFile: await net.clusterKeyFile() });
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
    const receiver = await net.startHost({ clusterKeyFile: keyFile });
    const sender = await net.startHost({ clusterKeyFile: keyFile });

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

describe('the protocol on the wire', () => {
  const psk = Buffer.alloc(32, 7);
  const a = Buffer.alloc(NONCE_LENGTH, 1);
  const b = Buffer.alloc(NONCE_LENGTH, 2);

  it('derives one ChaCha20 key stream per direction from the key and both nonces', () => {
    const zeros = new Uint8Array(32);
    const ab = keyStream(psk, a, b).update(zeros).toString('hex');
    // Pinned: a change here is a new wire protocol, which old hosts cannot talk to (see protector.ts).
    expect(ab).toBe(PINNED_A_TO_B);
    // What a sends is what b deciphers (CTR: the same stream), in pieces of any size.
    const rx = keyStream(psk, a, b);
    expect(
      Buffer.concat([rx.update(zeros.subarray(0, 5)), rx.update(zeros.subarray(5))]).toString('hex'),
    ).toBe(ab);
    // The other direction, another key or other nonces: another stream.
    const others = [
      keyStream(psk, b, a),
      keyStream(Buffer.alloc(32, 8), a, b),
      keyStream(psk, a, randomBytes(24)),
    ];
    for (const other of others) expect(other.update(zeros).toString('hex')).not.toBe(ab);
  });

  it('is spoken by a host as described: nonces, confirmation, then the stream (a raw client speaking it is answered)', async () => {
    const keyFile = await net.clusterKeyFile();
    const { psk: key } = await loadClusterKey(keyFile);
    const host = await net.startHost({ clusterKeyFile: keyFile, allow: [] });
    const client = await rawClient(host.node.multiaddrs[0]);
    try {
      const mine = randomBytes(NONCE_LENGTH);
      client.socket.write(mine);
      const theirs = await client.read(NONCE_LENGTH);
      client.socket.write(tag(key, 'xenos/pnet-confirm/2\n', mine, theirs));
      expect((await client.read(TAG_LENGTH)).equals(tag(key, 'xenos/pnet-confirm/2\n', theirs, mine))).toBe(
        true,
      );
      // Inside: libp2p's multistream-select, proposing Noise; the host answers in kind, through the stream.
      const out = keyStream(key, mine, theirs);
      const inbound = keyStream(key, theirs, mine);
      client.socket.write(out.update(Buffer.from('\x13/multistream/1.0.0\n\x07/noise\n', 'latin1')));
      const answer = inbound.update(await client.read(20)).toString('latin1');
      expect(answer).toBe('\x13/multistream/1.0.0\n');
    } finally {
      client.socket.destroy();
    }
  });

  it('refuses a host of protocol 1 (XSalsa20) holding the same key as `version`, not as a wrong key', async () => {
    const keyFile = await net.clusterKeyFile();
    const { psk: key } = await loadClusterKey(keyFile);
    const host = await net.startHost({ clusterKeyFile: keyFile, allow: [] });
    const client = await rawClient(host.node.multiaddrs[0]);
    const mine = randomBytes(NONCE_LENGTH);
    client.socket.write(mine);
    const theirs = await client.read(NONCE_LENGTH);
    client.socket.write(tag(key, 'xenos/pnet-confirm/1\n', mine, theirs));
    await client.closed;
    expect(host.node.handshakeRefusals.snapshot()).toMatchObject({ version: 1, bad_key: 0 });
  });
});

// The first 32 bytes of the stream from a to b, as OpenSSL's own tools compute it from the description:
//   openssl kdf -keylen 44 -kdfopt digest:SHA256 -kdfopt hexkey:07…07 -kdfopt hexsalt:01…0102…02 \
//     -kdfopt 'info:xenos/pnet/2 chacha20' HKDF   → key (32 bytes) | nonce (12)
//   head -c 32 /dev/zero | openssl enc -chacha20 -K <key> -iv 00000000<nonce> | xxd -p
const PINNED_A_TO_B = 'ac2ef78ea50f2138d4b141a118045bd74bb2085ab08359f05e61dee90e6a113e';

/** The key confirmation tag, written out from the protocol's description. */
function tag(key: Uint8Array, domain: string, from: Uint8Array, to: Uint8Array): Buffer {
  return createHmac('sha256', key).update(domain).update(from).update(to).digest().subarray(0, TAG_LENGTH);
}

/** A plain TCP connection to a host's multiaddr, read by exact byte counts. */
async function rawClient(addr: string) {
  const [, host, port] = /\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(addr)!;
  const socket = connect({ host, port: Number(port) });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let buffered = Buffer.alloc(0);
  let want: { n: number; resolve: (b: Buffer) => void } | undefined;
  const serve = () => {
    if (want && buffered.length >= want.n) {
      const { n, resolve } = want;
      want = undefined;
      resolve(buffered.subarray(0, n));
      buffered = buffered.subarray(n);
    }
  };
  socket.on('data', (d: Buffer) => {
    buffered = Buffer.concat([buffered, d]);
    serve();
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket,
    closed,
    read(n: number): Promise<Buffer> {
      const gone = closed.then(() => {
        throw new Error(`closed before ${n} bytes came`);
      });
      gone.catch(() => {});
      const got = new Promise<Buffer>((resolve) => {
        want = { n, resolve };
        serve();
      });
      return Promise.race([got, gone]);
    },
  };
}

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
