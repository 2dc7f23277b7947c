// The contract every MigrationTransport passes (the libp2p one between two hosts; any other must pass the
// same cases before a driver may use it): labelled streams arrive in the order they were opened, bytes
// move unchanged both ways, half-close works both ways, a reader that stops holds the writer back, and an
// abort on either side errors the other promptly.

import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IncomingMigration, MigrationTransport } from '../../../src/drivers/driver.ts';
import { until } from '../../wait.ts';

/** One migration's two ends. */
export interface TransportPair {
  transport: MigrationTransport;
  /** The streams of that migration as the destination's driver gets them. */
  incoming: IncomingMigration;
}

export interface TransportFixture {
  /** A fresh migration between the two ends. */
  pair(): Promise<TransportPair>;
  cleanup(): Promise<void>;
}

/** Reads a Duplex to its end (leaving its writable side open): its sha256 and length. */
export async function digestOf(stream: Duplex): Promise<{ hash: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { hash: hash.digest('hex'), bytes };
}

/** Writes `total` pseudo-random bytes (in 1 MiB pieces) with backpressure, then ends; their sha256. */
export async function sendRandom(stream: Duplex, total: number): Promise<string> {
  const hash = createHash('sha256');
  const piece = randomBytes(1024 * 1024);
  for (let sent = 0; sent < total; ) {
    const n = Math.min(piece.length, total - sent);
    const chunk = piece.subarray(0, n);
    piece[0] = (piece[0] + 1) & 0xff; // not the same MiB twice
    hash.update(chunk);
    if (!stream.write(Buffer.from(chunk))) await once(stream, 'drain');
    sent += n;
  }
  stream.end();
  return hash.digest('hex');
}

async function next(incoming: IncomingMigration) {
  const it = incoming[Symbol.asyncIterator]();
  const r = await it.next();
  if (r.done) throw new Error('the migration ended with no stream');
  return r.value;
}

export function transportContract(name: string, make: () => Promise<TransportFixture>): void {
  describe(`MigrationTransport contract: ${name}`, () => {
    let fx: TransportFixture;
    beforeEach(async () => {
      fx = await make();
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    it('moves bytes unchanged both ways, and half-closes each way on its own', async () => {
      const { transport, incoming } = await fx.pair();
      const src = await transport.open('domain-dir', {});
      const dst = await next(incoming);
      expect(dst.label).toBe('domain-dir');
      const size = 24 * 1024 * 1024;
      const [sent, got] = await Promise.all([sendRandom(src, size), digestOf(dst.stream)]);
      expect(got).toEqual({ hash: sent, bytes: size });
      // The source's side is closed for writing; the destination still answers on its own.
      const answer = digestOf(src);
      dst.stream.end('{"ok":true}\n');
      const back = await answer;
      expect(back.bytes).toBe(12);
    });

    it('hands the streams over in the order they were opened, each with its label', async () => {
      const { transport, incoming } = await fx.pair();
      const labels = ['control', 'memory', 'disk'];
      const opened = await Promise.all(labels.map((l) => transport.open(l, {})));
      for (const [i, s] of opened.entries()) s.end(labels[i]);
      const seen: string[] = [];
      for await (const { label, stream } of incoming) {
        seen.push(label);
        const text = (await digestOf(stream)).bytes;
        expect(text).toBe(label.length);
        if (seen.length === labels.length) break;
      }
      expect(seen).toEqual(labels);
    });

    it('holds the writer back while the reader does not read', async () => {
      const { transport, incoming } = await fx.pair();
      const src = await transport.open('memory', {});
      const dst = await next(incoming);
      dst.stream.pause();
      let written = 0;
      let blocked = false;
      const piece = Buffer.alloc(1024 * 1024, 7);
      // Write until the writer is told to wait; it must be told within a bound well under 256 MiB.
      while (written < 256 * 1024 * 1024) {
        written += piece.length;
        if (!src.write(piece)) {
          const drained = once(src, 'drain').then(() => true);
          const stalled = await Promise.race([drained, new Promise<false>((r) => setTimeout(r, 300, false))]);
          if (!stalled) {
            blocked = true;
            break;
          }
        }
      }
      expect(blocked).toBe(true);
      expect(written).toBeLessThan(96 * 1024 * 1024);
      src.end();
      dst.stream.resume();
      const got = await digestOf(dst.stream);
      expect(got.bytes).toBe(written);
    });

    it('errors the destination promptly when the source aborts', async () => {
      const { transport, incoming } = await fx.pair();
      const abort = new AbortController();
      const src = await transport.open('disk', { signal: abort.signal });
      src.on('error', () => {});
      const dst = await next(incoming);
      src.write(Buffer.alloc(1024));
      const started = Date.now();
      const failed = digestOf(dst.stream).then(
        () => 'ended cleanly',
        () => 'errored',
      );
      abort.abort(new Error('source gave up'));
      expect(await failed).toBe('errored');
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(src.destroyed).toBe(true);
    });

    it('errors the source promptly when the destination gives up', async () => {
      const { transport, incoming } = await fx.pair();
      const src = await transport.open('disk', {});
      const dst = await next(incoming);
      dst.stream.on('error', () => {});
      const started = Date.now();
      const failed = new Promise<string>((resolve) => {
        src.on('error', () => resolve('errored'));
        src.on('close', () => resolve('closed'));
      });
      dst.stream.destroy(new Error('destination gave up'));
      // A writer notices at once; a reader too (its readable side errors or ends without the answer).
      src.write(Buffer.alloc(64 * 1024));
      expect(['errored', 'closed']).toContain(await failed);
      await until('the source stream is destroyed', () => src.destroyed, 5_000);
      expect(Date.now() - started).toBeLessThan(5_000);
    });
  });
}
