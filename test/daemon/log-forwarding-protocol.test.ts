// The /xenos/logs/1.0.0 protocol between two real XenosNodes (TCP loopback, cluster key, Noise, Yamux):
// a large output reaches a slow reader intact (the reader pauses the stream rather than buffering it
// all), the runner's refusal arrives as its ApiError, malformed and oversized requests are refused,
// a reader that leaves aborts the runner's output, and a runner that stops ends the reader's cleanly.

import { createHash, randomBytes } from 'node:crypto';
import type { Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, errors } from '../../src/api/status-errors.ts';
import {
  LOGS_PROTOCOL,
  type LogForwardRequest,
  openForwardedLogs,
  serveForwardedLogs,
} from '../../src/daemon/log-forwarding.ts';
import type { XenosNode } from '../../src/p2p/node.ts';
import { captureLog } from '../log-capture.ts';
import { TestNet, waitFor } from '../p2p/cluster.ts';

const net = new TestNet();
const stops: AbortController[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) s.abort();
  await net.cleanup();
});

type Open = (req: LogForwardRequest, signal: AbortSignal) => Promise<AsyncIterable<Uint8Array>>;

/** Two nodes; B serves logs with `open`. Returns A, B's peer id, B's stop switch and B's log lines. */
async function pair(open: Open) {
  const [a, b] = await net.startCluster(2);
  const stop = new AbortController();
  stops.push(stop);
  const { log, lines } = captureLog();
  const logged: string[] = [];
  await b.node.handle(LOGS_PROTOCOL, (stream, connection) => {
    serveForwardedLogs(stream, connection, open, {
      signal: stop.signal,
      log,
      hostName: 'b',
    }).catch((err) => logged.push(String(err)));
  });
  return { a: a.node, peer: { peerId: b.node.peerId.toString(), host: 'b' }, stop, logged, lines };
}

const REQUEST: LogForwardRequest = { namespace: 'default', name: 'web', follow: false };

async function collect(
  it: AsyncIterable<Uint8Array>,
  onChunk?: (chunk: Uint8Array) => Promise<void>,
): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) {
    parts.push(Buffer.from(c));
    await onChunk?.(c);
  }
  return Buffer.concat(parts);
}

/** Sends `body` raw as a request and reads the header B answers with (or the error reading it). */
async function rawRequest(a: XenosNode, peerId: string, body: Uint8Array): Promise<unknown> {
  const stream: Stream = await a.dialProtocol(peerId, LOGS_PROTOCOL);
  const lp = lpStream(stream, { maxDataLength: 1024 * 1024 });
  try {
    await lp.write(body);
    return JSON.parse(Buffer.from((await lp.read()).subarray()).toString());
  } finally {
    stream.abort(new Error('done'));
  }
}

describe('log forwarding protocol', () => {
  it('holds the runner back while the reader stalls, and carries 40 MiB intact', async () => {
    const SIZE = 40 * 1024 * 1024;
    const random = randomBytes(1024 * 1024);
    const expected = createHash('sha256');
    let produced = 0;
    const { a, peer } = await pair(async () =>
      (async function* () {
        // 1 MiB pieces, each different; the runner cuts them into frames of at most 64 KiB.
        for (let i = 0; i < SIZE / random.byteLength; i++) {
          const piece = Buffer.from(random);
          piece.writeUInt32BE(i, i % (piece.byteLength - 4));
          expected.update(piece);
          produced += piece.byteLength;
          yield piece;
        }
      })(),
    );
    const out = await openForwardedLogs(a, peer, REQUEST, { signal: new AbortController().signal });
    let consumed = 0;
    let aheadWhileStalled = 0;
    const got = await collect(out, async (chunk) => {
      consumed += chunk.byteLength;
      if (consumed !== chunk.byteLength) return;
      // Stall on the first frame until the runner stops producing (nothing new for 500 ms).
      let last = -1;
      while (produced !== last) {
        last = produced;
        await new Promise((r) => setTimeout(r, 500));
      }
      aheadWhileStalled = produced - consumed;
    });
    // Without backpressure the runner would have produced all 40 MiB; the Yamux window (16 MiB), the
    // runner's send queue (1 MiB) and a piece in hand bound it.
    expect(aheadWhileStalled).toBeLessThan(20 * 1024 * 1024);
    expect(got.byteLength).toBe(SIZE);
    expect(createHash('sha256').update(got).digest('hex')).toBe(expected.digest('hex'));
  }, 30_000);

  it("passes the runner's refusal back as its ApiError", async () => {
    const { a, peer } = await pair(async (req) => {
      throw errors.badRequest(`instance ${req.name} has no domain on host b yet (phase Pending)`);
    });
    const err = await openForwardedLogs(a, peer, REQUEST, { signal: new AbortController().signal }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({
      code: 400,
      reason: 'BadRequest',
      message: 'instance web has no domain on host b yet (phase Pending)',
    });
  });

  it('refuses malformed requests with a 400 header, and oversized ones outright', async () => {
    const { a, peer, lines } = await pair(async () => (async function* () {})());
    const bad = (o: unknown) => rawRequest(a, peer.peerId, Buffer.from(JSON.stringify(o)));
    expect(await bad({ namespace: 'default', name: 'web', follow: 'yes' })).toMatchObject({
      error: { code: 400, message: 'log forward request: follow must be true or false' },
    });
    expect(await bad({ namespace: '', name: 'web', follow: false })).toMatchObject({ error: { code: 400 } });
    expect(await bad([1, 2])).toMatchObject({ error: { code: 400 } });
    expect(await bad({ ...REQUEST, tail: -1 })).toMatchObject({ error: { code: 400 } });
    const huge = Buffer.from(JSON.stringify({ ...REQUEST, pad: 'x'.repeat(8192) }));
    await expect(rawRequest(a, peer.peerId, huge)).rejects.toThrow();
    await waitFor(() => lines.some((l) => /too long/.test(l.msg)), 5_000, 'the oversized request logged');
  });

  it('a reader that leaves aborts the runner; a runner that stops ends the reader cleanly', async () => {
    let runnerSignal: AbortSignal | undefined;
    const follow: Open = async (_req, signal) => {
      runnerSignal = signal;
      return (async function* () {
        yield Buffer.from('first line\n');
        // Follow: nothing more until the signal ends it.
        await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
      })();
    };
    const { a, peer, stop } = await pair(follow);
    const leave = new AbortController();
    const out = await openForwardedLogs(a, peer, { ...REQUEST, follow: true }, { signal: leave.signal });
    const it = out[Symbol.asyncIterator]();
    expect(Buffer.from((await it.next()).value!).toString()).toBe('first line\n');
    const pending = it.next();
    leave.abort();
    expect((await pending).done).toBe(true);
    await waitFor(() => runnerSignal?.aborted === true, 5_000, 'the runner seeing the reader leave');

    const again = await openForwardedLogs(
      a,
      peer,
      { ...REQUEST, follow: true },
      {
        signal: new AbortController().signal,
      },
    );
    const reading = collect(again);
    await waitFor(() => runnerSignal?.aborted === false, 5_000, 'the second follow open');
    stop.abort();
    expect((await reading).toString()).toBe('first line\n');
  });
});
