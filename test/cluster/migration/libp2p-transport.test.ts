// The libp2p migration transport (/xenos/migrate/1.0.0) between two real libp2p nodes of one cluster
// (cluster key + Noise over loopback): the transport contract, refusals, and a bulk transfer of a few
// hundred MB through the private-network cipher with its hash checked (the pnet crash under bulk load
// must stay fixed).

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { lpStream } from '@libp2p/utils';
import { afterEach, describe, expect, it } from 'vitest';
import { MigrationRefusedError } from '../../../src/cluster/migration/errors.ts';
import { MIGRATE_PROTOCOL } from '../../../src/cluster/migration/protocol.ts';
import { TestNet } from '../../p2p/cluster.ts';
import { libp2pPair } from './libp2p-pair.ts';
import { digestOf, sendRandom, type TransportFixture, transportContract } from './transport-contract.ts';

async function libp2pFixture(): Promise<TransportFixture> {
  const net = new TestNet();
  const p = await libp2pPair(net);
  return {
    async pair() {
      const ref = p.expect();
      return { transport: p.dialer(ref), incoming: p.incoming(ref.uid) };
    },
    async cleanup() {
      await p.stop();
      await net.cleanup();
    },
  };
}

transportContract('libp2p (/xenos/migrate/1.0.0 over pnet + Noise)', libp2pFixture);

describe('libp2p migration transport', () => {
  const net = new TestNet();
  afterEach(() => net.cleanup());

  /** A pair of nodes and one 'disk' stream between them: the source's end and the destination's. */
  async function diskStream() {
    const p = await libp2pPair(net);
    const ref = p.expect();
    const src = await p.dialer(ref).open('disk', {});
    const dst = (await p.incoming(ref.uid)[Symbol.asyncIterator]().next()).value!;
    return { p, src, dst };
  }

  it('refuses a migration the target does not know, with the reason', async () => {
    const p = await libp2pPair(net);
    const ref = { namespace: 'default', name: 'nope', uid: randomUUID() };
    const err = await p
      .dialer(ref)
      .open('domain-dir', {})
      .catch((e: Error) => e);
    expect(err).toBeInstanceOf(MigrationRefusedError);
    expect((err as MigrationRefusedError).code).toBe('UnknownMigration');
    expect((err as Error).message).toMatch(/refused stream "domain-dir": no nope here/);
    await p.stop();
  });

  it('refuses a header that breaks the protocol, and one over the size cap', async () => {
    const p = await libp2pPair(net);
    const bPeer = p.b.node.peerId.toString();
    for (const [body, want] of [
      [
        JSON.stringify({ migration: { namespace: 'default', name: 'x', uid: 'u' }, label: '../x', seq: 0 }),
        /label/,
      ],
      [JSON.stringify({ label: 'x'.repeat(2000) }), null],
    ] as const) {
      const stream = await p.a.node.dialProtocol(bPeer, MIGRATE_PROTOCOL);
      const lp = lpStream(stream, { maxDataLength: 8192 });
      await lp.write(Buffer.from(body));
      const reply = await lp.read({ signal: AbortSignal.timeout(5000) }).then(
        (r) => JSON.parse(Buffer.from(r.subarray()).toString()),
        () => 'reset',
      );
      if (want) expect(reply.error.message).toMatch(want);
      else expect(reply).toBe('reset'); // over the cap: no answer, the stream is reset
    }
    expect(p.receiver.active).toBe(0);
    await p.stop();
  });

  it('moves 320 MiB through the private network unchanged', async () => {
    const { p, src, dst } = await diskStream();
    const size = 320 * 1024 * 1024;
    const began = performance.now();
    const [sent, got] = await Promise.all([sendRandom(src, size), digestOf(dst.stream)]);
    const seconds = (performance.now() - began) / 1000;
    expect(got).toEqual({ hash: sent, bytes: size });
    console.log(
      `320 MiB over pnet+noise+yamux in ${seconds.toFixed(1)} s (${(320 / seconds).toFixed(0)} MiB/s)`,
    );
    await p.stop();
  }, 180_000);

  it('a reader that stops holds the sender back, and takes every byte when it goes on', async () => {
    // A destination QEMU under load takes its bytes in fits: the bridge pauses the stream when QEMU's
    // socket is full and resumes it on drain, again and again, and now and then QEMU stops for a while.
    // While it stands still, what the sender may send is bounded by the muxer's window (16 MiB) and the
    // send cap, never by the size of the transfer: a stream resumed into a full reader must still stop
    // the window (libp2p's resume used to reopen it after the reader had paused again, and the sender's
    // bytes then piled up until libp2p aborted the stream at its 32 MiB cap).
    const { p, src, dst } = await diskStream();
    const size = 128 * 1024 * 1024;
    const piece = randomBytes(1024 * 1024);
    const hash = createHash('sha256');
    let sent = 0;
    const sending = (async () => {
      for (; sent < size; sent += piece.length) {
        piece[0] = (piece[0] + 1) & 0xff;
        hash.update(piece);
        if (!src.write(Buffer.from(piece))) await once(src, 'drain');
      }
      src.end();
    })();
    sending.catch(() => {});
    const got = createHash('sha256');
    let read = 0;
    let sinceFit = 0;
    let stood: number | undefined;
    const reading = new Promise<void>((resolve, reject) => {
      dst.stream.on('error', reject);
      dst.stream.on('end', resolve);
      dst.stream.on('data', (chunk: Buffer) => {
        got.update(chunk);
        read += chunk.length;
        sinceFit += chunk.length;
        if (stood === undefined && read >= 24 * 1024 * 1024) {
          // Stand still 3 s, or until the sender got 48 MiB past what was read (it must not).
          stood = 0;
          dst.stream.pause();
          const began = Date.now();
          const check = setInterval(() => {
            if (Date.now() - began < 3000 && sent - read < 48 * 1024 * 1024) return;
            clearInterval(check);
            stood = sent - read;
            dst.stream.resume();
          }, 50);
        } else if (stood !== undefined || sinceFit < 1024 * 1024) {
          return;
        } else {
          // A fit: the reader's socket is full for a moment.
          sinceFit = 0;
          dst.stream.pause();
          setTimeout(() => dst.stream.resume(), 20);
        }
      });
    });
    await reading;
    await sending;
    expect(stood!, 'bytes sent past the reader while it stood still').toBeLessThan(40 * 1024 * 1024);
    expect({ hash: got.digest('hex'), read }).toEqual({ hash: hash.digest('hex'), read: size });
    await p.stop();
  }, 60_000);

  it('a write still waiting for room ends with an error when its stream is destroyed', async () => {
    const { p, src, dst } = await diskStream();
    dst.stream.pause(); // the destination takes nothing: the window fills, then the send queue
    const chunk = Buffer.alloc(256 * 1024);
    let pending: Promise<Error | null | undefined> | undefined;
    // Past the muxer's window and the destination's read buffer (16 + 32 MiB), a write waits.
    for (let i = 0; i < 1024 && !pending; i++) {
      const done = new Promise<Error | null | undefined>((resolve) => src.write(chunk, resolve));
      const first = await Promise.race([done, new Promise((r) => setTimeout(r, 1500, 'waiting'))]);
      if (first === 'waiting') pending = done;
    }
    expect(pending, 'a write that waits for room').toBeDefined();
    src.on('error', () => {});
    src.destroy(new Error('the link broke'));
    const outcome = await Promise.race([
      pending!,
      new Promise((r) => setTimeout(r, 5000, 'never called back')),
    ]);
    expect(outcome).toBeInstanceOf(Error);
    dst.stream.destroy();
    await p.stop();
  }, 60_000);
});
