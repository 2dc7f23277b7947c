// `/xenos/image/1.0.0` probed as a hostile peer would, over real libp2p on loopback: a request that is not
// JSON, too large, or names no digest is refused and counted, and the stream ends; an unknown image, an
// index past the end, another manifest are answered with their error codes, not bytes; a holder that
// announces more bytes than the chunk has, or sends more than it announced, is refused before the bytes are
// kept; a holder that stalls is given up on; a Declined answer offers chunk indexes and nothing else, a
// have answer names peer IDs and nothing else (peer exchange, whose memory is bounded). Peers without the
// cluster key cannot open the protocol at all.

import { lpStream } from '@libp2p/utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HolderRefusedError, WrongLengthError } from '../../../src/cluster/image-swarm/errors.ts';
import { ImageClient } from '../../../src/cluster/image-swarm/image-client.ts';
import { MAX_PEX_PEERS, PeerExchange } from '../../../src/cluster/image-swarm/peer-exchange.ts';
import {
  encodeFrame,
  IMAGE_PROTOCOL,
  ImageProtocolError,
  MAX_OFFER,
  parseHeader,
  parseRequest,
} from '../../../src/cluster/image-swarm/protocol.ts';
import { manifestDigest } from '../../../src/images/manifest.ts';
import { CHUNK, randomFile, type SwarmHost, SwarmNet } from './swarm-hosts.ts';

let swarm: SwarmNet;
let holder: SwarmHost;
let asker: SwarmHost;
let digest: string;
let manifest: string;

beforeEach(async () => {
  swarm = new SwarmNet();
  [holder, asker] = await swarm.start(2);
  const file = await randomFile(await swarm.net.tempDir(), 3 * CHUNK);
  digest = (await swarm.seed(holder, file.path)).digest;
  manifest = manifestDigest((await holder.images.manifest(digest))!);
});
afterEach(async () => {
  await swarm.cleanup();
});

/** Sends `bytes` as one frame on a fresh stream and returns the answer frame (or the error that ended it). */
async function raw(bytes: Uint8Array): Promise<string> {
  const stream = await asker.node.dialProtocol(holder.node.peerId.toString(), IMAGE_PROTOCOL);
  const lp = lpStream(stream);
  await lp.write(bytes);
  try {
    return Buffer.from((await lp.read({ signal: AbortSignal.timeout(5000) })).subarray()).toString();
  } catch (err) {
    return `ended: ${(err as Error).name}`;
  } finally {
    stream.abort(new Error('done'));
  }
}

const client = () => new ImageClient({ node: asker.node }, { idleTimeoutMs: 1000 });
const peer = () => holder.node.peerId.toString();

describe('the image protocol against hostile input', () => {
  it('refuses garbage and oversized requests, counting them', async () => {
    expect(await raw(Buffer.from('not json'))).toMatch(/"code":"BadRequest".*not JSON/);
    expect(await raw(Buffer.from(JSON.stringify({ op: 'chunk', digest: 'sha256:xyz' })))).toMatch(
      /digest must be/,
    );
    expect(await raw(Buffer.from(JSON.stringify({ op: 'steal', digest })))).toMatch(/op must be/);
    expect(await raw(Buffer.from(JSON.stringify({ op: 'chunk', digest, manifest, index: -1 })))).toMatch(
      /index must be/,
    );
    expect(await raw(Buffer.alloc(64 * 1024, 0x7b))).toMatch(/^ended: /);
    expect(holder.server.refusals.get('malformed')).toBe(4);
    expect(holder.server.refusals.get('too_large')).toBe(1);
  });

  it('answers what it does not hold with error codes, never bytes', async () => {
    const other = `sha256:${'0'.repeat(64)}`;
    await expect(client().manifest(peer(), other, AbortSignal.timeout(5000))).rejects.toMatchObject({
      code: 'NotHeld',
    });
    const past = client().chunk(
      peer(),
      { digest, manifest, index: 3, length: CHUNK },
      AbortSignal.timeout(5000),
    );
    await expect(past).rejects.toBeInstanceOf(HolderRefusedError);
    await expect(past).rejects.toMatchObject({ code: 'ChunkNotHeld' });
    const wrong = client().chunk(
      peer(),
      { digest, manifest: other, index: 0, length: CHUNK },
      AbortSignal.timeout(5000),
    );
    await expect(wrong).rejects.toMatchObject({ code: 'ManifestMismatch' });
    // And what it holds, exactly.
    const bytes = await client().chunk(
      peer(),
      { digest, manifest, index: 2, length: CHUNK },
      AbortSignal.timeout(5000),
    );
    expect(bytes.equals((await holder.images.readChunk(digest, 2))!)).toBe(true);
  });

  it('refuses a holder announcing or sending more than the chunk has, and gives up on one that stalls', async () => {
    await holder.server.stop();
    let mode: 'announce' | 'overflow' | 'stall' = 'announce';
    await holder.node.handle(IMAGE_PROTOCOL, async (stream) => {
      const lp = lpStream(stream);
      parseRequest((await lp.read()).subarray());
      const length = mode === 'announce' ? 1024 * 1024 * 1024 : CHUNK;
      await lp.write(encodeFrame({ ok: true, manifest, length }, 4096, 'h'));
      if (mode === 'overflow') {
        await lp.write(Buffer.alloc(CHUNK - 10));
        await lp.write(Buffer.alloc(20));
      }
      if (mode === 'stall') await lp.write(Buffer.alloc(1000)); // then nothing
    });
    const ask = () =>
      client().chunk(peer(), { digest, manifest, index: 0, length: CHUNK }, AbortSignal.timeout(10_000));
    await expect(ask()).rejects.toThrow(/announces 1073741824 bytes, more than the 65536 expected/);
    mode = 'overflow';
    await expect(ask()).rejects.toBeInstanceOf(WrongLengthError);
    mode = 'stall';
    await expect(ask()).rejects.toThrow(/no bytes for 1000 ms after 1000 of 65536/);
  });

  it('is out of reach of a peer without the cluster key', async () => {
    const stranger = await swarm.net.startHost({ clusterKeyFile: await swarm.net.clusterKeyFile() });
    const outsider = new ImageClient({ node: stranger.node }, { openTimeoutMs: 3000 });
    await expect(
      outsider.manifest(holder.node.multiaddrs[0], digest, AbortSignal.timeout(10_000)),
    ).rejects.toThrow(/unreachable/);
    expect(holder.server.bytesSent).toBe(0);
  });
});

describe('a Declined answer', () => {
  const header = (error: unknown) => new TextEncoder().encode(JSON.stringify({ error }));

  it('carries the chunks a seed offers instead', () => {
    const h = parseHeader(header({ code: 'Declined', message: 'gone to another', offer: [3, 4] }), 0, 'p');
    expect(h).toEqual({ error: { code: 'Declined', message: 'gone to another', offer: [3, 4] } });
    const request = { op: 'chunk', digest, manifest, index: 1, offers: true };
    expect(parseRequest(encodeFrame(request, 1024, 'the request'))).toEqual(request);
  });

  it('refuses an offer that is not a short list of chunk indexes', () => {
    for (const offer of [[-1], [1.5], ['1'], { 0: 1 }, Array.from({ length: MAX_OFFER + 1 }, (_, i) => i)])
      expect(() => parseHeader(header({ code: 'Declined', message: 'x', offer }), 0, 'p')).toThrow(
        ImageProtocolError,
      );
  });
});

describe("a have answer's peer exchange", () => {
  const ok = (extra: object) =>
    new TextEncoder().encode(JSON.stringify({ ok: true, manifest, length: 1, ...extra }));
  const named = '12D3KooWGRUVh2LPn8CT7Mm1sYvDbVa7S1oH6S5nRUBgy3gPvhHu';

  it('names other peers that asked for the image lately', () => {
    expect(parseHeader(ok({ peers: [named] }), 1, 'p')).toEqual({
      ok: true,
      manifest,
      length: 1,
      peers: [named],
    });
    expect(parseHeader(ok({}), 1, 'p')).toEqual({ ok: true, manifest, length: 1 });
  });

  it('refuses anything but a short list of peer IDs', () => {
    for (const peers of [
      'x',
      [1],
      ['not a peer id'],
      [`${named}/ip4/1.2.3.4`],
      Array.from({ length: MAX_PEX_PEERS + 1 }, () => named),
    ])
      expect(() => parseHeader(ok({ peers }), 1, 'p')).toThrow(ImageProtocolError);
  });
});

describe('PeerExchange', () => {
  it('lists the other recent askers of an image, most recent first, within its bounds', () => {
    const pex = new PeerExchange({ windowMs: 1000 });
    pex.seen(digest, 'a', 0);
    pex.seen(digest, 'b', 100);
    pex.seen(digest, 'a', 200); // asked again: most recent now
    pex.seen(manifest, 'c', 200); // another image
    expect(pex.others(digest, 'x', 300)).toEqual(['a', 'b']);
    expect(pex.others(digest, 'a', 300)).toEqual(['b']);
    expect(pex.others(digest, 'x', 1150)).toEqual(['a']); // b asked over a window ago
    for (let i = 0; i < 100; i++) pex.seen(digest, `p${i}`, 2000);
    const listed = pex.others(digest, 'x', 2000);
    expect(listed).toHaveLength(MAX_PEX_PEERS);
    expect(listed[0]).toBe('p99');
  });
});
