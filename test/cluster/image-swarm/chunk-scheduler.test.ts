// The swarm pull's chunk choice (src/cluster/image-swarm/chunk-scheduler.ts): rarest first with a random
// tie-break, a bounded number of requests per holder, a spoiled chunk asked of another holder, strikes and
// dropping, a dead holder costing only its in-flight chunks, the endgame, a seed's declines and offers;
// and, as a property over random swarms with lying and dying holders and a seeding holder that declines
// (the real FirstPass), that a pull with one honest full holder always finishes and never breaks the bounds.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkScheduler, hasBit } from '../../../src/cluster/image-swarm/chunk-scheduler.ts';
import { FirstPass } from '../../../src/cluster/image-swarm/first-pass.ts';
import { bitmapInterval } from '../../../src/cluster/image-swarm/puller.ts';

function bitmap(chunks: number, has: (i: number) => boolean): Uint8Array {
  const b = new Uint8Array(Math.ceil(chunks / 8));
  for (let i = 0; i < chunks; i++) if (has(i)) b[i >> 3] |= 1 << (i & 7);
  return b;
}

const all = (n: number) => bitmap(n, () => true);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** A small deterministic generator (mulberry32), so a failing case repeats. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('ChunkScheduler', () => {
  it('reads the store bitmap layout: bit i&7 of byte i>>3, least significant first', () => {
    const b = new Uint8Array([0b0000_0101, 0b1000_0000]);
    expect(range(16).filter((i) => hasBit(b, i))).toEqual([0, 2, 15]);
  });

  it('asks first for the chunks the fewest holders have', () => {
    const s = new ChunkScheduler({ chunks: 16, missing: range(16), random: seeded(1) });
    s.setPeer('full', all(16));
    s.setPeer(
      'half',
      bitmap(16, (i) => i < 8),
    );
    // Chunks 8..15 only "full" has: those come first from it, whatever the random order.
    const picks = [s.next('full'), s.next('full'), s.next('full'), s.next('full')];
    expect(picks.every((i) => i !== undefined && i >= 8)).toBe(true);
    expect(s.next('full')).toBeUndefined(); // 4 in flight: the bound
    const fromHalf = s.next('half')!;
    expect(fromHalf).toBeLessThan(8);
  });

  it('breaks ties by a random order of its own, so pullers start on different chunks', () => {
    const firsts = new Set<number>();
    for (let seed = 0; seed < 20; seed++) {
      const s = new ChunkScheduler({ chunks: 64, missing: range(64), random: seeded(seed) });
      s.setPeer('p', all(64));
      firsts.add(s.next('p')!);
    }
    expect(firsts.size).toBeGreaterThan(10);
  });

  it('skips what is already here (a resumed pull) and never asks a holder for what it lacks', () => {
    const s = new ChunkScheduler({ chunks: 10, missing: [3, 7], random: seeded(2) });
    s.setPeer(
      'p',
      bitmap(10, (i) => i !== 7),
    );
    expect(s.next('p')).toBe(3);
    expect(s.next('p')).toBeUndefined();
    expect(s.remaining).toBe(2);
    expect(s.unavailable()).toEqual([7]);
  });

  it('asks another holder for a chunk one spoiled, and drops a holder after three strikes', () => {
    const s = new ChunkScheduler({ chunks: 4, missing: range(4), maxPerPeer: 1, random: seeded(3) });
    s.setPeer('liar', all(4));
    s.setPeer('honest', all(4));
    const first = s.next('liar')!;
    expect(s.failed(first, 'liar', 'corrupt')).toEqual({ dropped: false });
    // The liar is not asked for that chunk again while the honest holder has it.
    for (let k = 0; k < 3; k++) {
      const i = s.next('liar');
      expect(i).not.toBe(first);
      s.failed(i!, 'liar', 'none');
    }
    expect(s.next('honest')).toBe(first);
    const second = s.next('liar')!;
    expect(s.failed(second, 'liar', 'truncated')).toEqual({ dropped: false });
    const third = s.next('liar')!;
    expect(s.failed(third, 'liar', 'corrupt')).toEqual({ dropped: true });
    expect(s.isDropped('liar')).toBe(true);
    expect(s.peers).toEqual(['honest']);
    expect(s.setPeer('liar', all(4))).toBe(false); // not taken back in this pull
    expect(s.strikes('liar')).toBe(3);
  });

  it('asks the spoiler again when no other holder has the chunk', () => {
    const s = new ChunkScheduler({ chunks: 2, missing: [0], random: seeded(4) });
    s.setPeer('only', all(2));
    s.failed(s.next('only')!, 'only', 'corrupt');
    expect(s.next('only')).toBe(0);
  });

  it('frees only the in-flight chunks of a holder that dies', () => {
    const s = new ChunkScheduler({ chunks: 12, missing: range(12), maxPerPeer: 3, random: seeded(5) });
    s.setPeer('a', all(12));
    s.setPeer('b', all(12));
    const a = [s.next('a')!, s.next('a')!, s.next('a')!];
    const b = [s.next('b')!, s.next('b')!];
    s.done(a[0], 'a');
    expect(s.removePeer('a').sort()).toEqual([a[1], a[2]].sort());
    expect(s.remaining).toBe(11);
    expect(s.inFlight('b')).toBe(2);
    // The freed chunks are asked of b now.
    const next = s.next('b')!;
    expect(b).not.toContain(next);
    expect(s.availability(a[1])).toBe(1);
  });

  it('in the endgame duplicates a request still out and reports the copies to cancel', () => {
    const s = new ChunkScheduler({ chunks: 2, missing: [0, 1], maxPerPeer: 2, random: seeded(6) });
    s.setPeer('slow', all(2));
    expect([s.next('slow'), s.next('slow')].sort()).toEqual([0, 1]);
    s.setPeer('fast', all(2));
    const dup = s.next('fast')!;
    expect([0, 1]).toContain(dup);
    const other = s.next('fast')!;
    expect(other).toBe(1 - dup);
    expect(s.next('fast')).toBeUndefined();
    expect(s.done(dup, 'fast')).toEqual(['slow']);
    expect(s.inFlight('slow')).toBe(1);
  });

  it('asks a seed for what it offers first, and not again for what it declined until told to forget', () => {
    const s = new ChunkScheduler({ chunks: 8, missing: range(8), maxPerPeer: 1, random: seeded(7) });
    s.setPeer('seed', all(8));
    const first = s.next('seed')!;
    s.declined(first, 'seed', [first, 99, 6, 5]);
    // The declined chunk is skipped even when offered, an index past the image is ignored.
    const offered = first === 6 ? 5 : 6;
    expect(s.next('seed')).toBe(offered);
    s.done(offered, 'seed');
    for (let k = 0; k < 6; k++) {
      const i = s.next('seed')!;
      expect(i).not.toBe(first);
      s.done(i, 'seed');
    }
    // Only the declined chunk is left: nothing to ask the seed until the declines are forgotten.
    expect(s.remaining).toBe(1);
    expect(s.next('seed')).toBeUndefined();
    s.forgetDeclined();
    expect(s.next('seed')).toBe(first);
  });

  it('a pull with one honest full holder finishes, whatever the others do (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          chunks: fc.integer({ min: 1, max: 40 }),
          seed: fc.integer(),
          maxPerPeer: fc.integer({ min: 1, max: 4 }),
          // The full holder seeds: chunks it sent to other pullers are declined (and forgotten) for a while.
          sentElsewhere: fc.double({ min: 0, max: 1, noNaN: true }),
          peers: fc.array(
            fc.record({
              kind: fc.constantFrom('honest', 'liar', 'dies'),
              density: fc.double({ min: 0, max: 1, noNaN: true }),
            }),
            { maxLength: 5 },
          ),
        }),
        ({ chunks, seed, maxPerPeer, sentElsewhere, peers }) => {
          const random = seeded(seed);
          let clock = 0;
          const pass = new FirstPass(chunks, { windowMs: 1000, now: () => clock });
          for (let i = 0; i < chunks; i++) if (random() < sentElsewhere) pass.decide(i, 'another puller');
          const s = new ChunkScheduler({ chunks, missing: range(chunks), maxPerPeer, random });
          const kinds = new Map<string, string>([['seed', 'honest']]);
          const maps = new Map<string, Uint8Array>([['seed', all(chunks)]]);
          s.setPeer('seed', all(chunks));
          peers.forEach((p, k) => {
            const name = `p${k}`;
            const map = bitmap(chunks, () => random() < p.density);
            kinds.set(name, p.kind);
            maps.set(name, map);
            s.setPeer(name, map);
          });
          const out = new Map<string, Set<number>>();
          let steps = 0;
          let declines = 0;
          const forget = () => {
            s.forgetDeclined();
            declines = 0;
          };
          while (!s.complete) {
            if (++steps > 20 * chunks * (peers.length + 1) + 100) throw new Error('no progress');
            clock += 100;
            if (steps % 5 === 0) forget();
            for (const peer of s.peers) {
              let i = s.next(peer);
              while (i !== undefined) {
                expect(hasBit(maps.get(peer)!, i)).toBe(true);
                const set = out.get(peer) ?? new Set<number>();
                out.set(peer, set);
                expect(set.has(i)).toBe(false);
                set.add(i);
                expect(s.inFlight(peer)).toBeLessThanOrEqual(maxPerPeer);
                i = s.next(peer);
              }
            }
            const requests = [...out].flatMap(([peer, set]) => [...set].map((i) => ({ peer, i })));
            if (requests.length === 0) {
              // Nothing to ask but what the seed declined: the puller waits for its next look.
              expect(declines).toBeGreaterThan(0);
              forget();
              continue;
            }
            const { peer, i } = requests[Math.floor(random() * requests.length)];
            out.get(peer)!.delete(i);
            const kind = kinds.get(peer);
            const offer = peer === 'seed' ? pass.decide(i, 'this puller') : undefined;
            if (offer) {
              expect(offer.length).toBeGreaterThan(0);
              s.declined(i, peer, offer);
              declines++;
            } else if (kind === 'liar') {
              s.failed(i, peer, random() < 0.5 ? 'corrupt' : 'truncated');
              if (s.isDropped(peer)) out.delete(peer);
            } else if (kind === 'dies' && random() < 0.3) {
              s.failed(i, peer, 'none');
              s.removePeer(peer);
              out.delete(peer);
            } else {
              for (const other of s.done(i, peer)) out.get(other)?.delete(i);
            }
          }
          for (const [peer, kind] of kinds)
            if (kind === 'liar' && s.has(peer)) expect(s.strikes(peer)).toBeLessThan(3);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('how often a pull reads partial holders’ bitmaps', () => {
  it('counts the partial holders in the pull', () => {
    const s = new ChunkScheduler({ chunks: 9, missing: [0, 1, 2] });
    s.setPeer('seed', new Uint8Array([0xff, 0x01]));
    s.setPeer('p', new Uint8Array([0x01, 0x00]));
    s.setPeer('q', new Uint8Array([0x00, 0x00]));
    expect(s.partialPeers).toBe(2);
    s.setPeer('q', new Uint8Array([0xff, 0x01])); // q got the rest
    expect(s.partialPeers).toBe(1);
  });

  it('every 250 ms with few of them, at most 8 reads a second in all, at least once a second', () => {
    expect(bitmapInterval(0)).toBe(250);
    expect(bitmapInterval(2)).toBe(250);
    expect(bitmapInterval(5)).toBe(625);
    expect(bitmapInterval(8)).toBe(1000);
    expect(bitmapInterval(100)).toBe(1000);
  });
});
