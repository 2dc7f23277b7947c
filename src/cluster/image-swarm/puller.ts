// One swarm pull of one image: the manifest (accepted only when it hashes to the manifest digest the
// holders published in the replicated store), then chunks from every holder at once, chosen by the
// ChunkScheduler (rarest first, at most `maxPerPeer` requests per holder), each checked by the store
// against its manifest entry before it is written. A corrupt, wrong-length or truncated chunk counts against
// its sender (dropped after 3) and is asked of another holder; a holder that cannot be reached leaves the
// pull with only its in-flight chunks lost; new holders are looked for every `refreshMs` and partial
// holders' bitmaps read again (BITMAP_READS_PER_SECOND in all, each partial holder every 250 ms to 1 s), so
// hosts that start holding the image (other pullers among them) join and their new chunks are used. The
// pull announces
// this host as a provider once it holds a first chunk, so others can pull from it meanwhile. It resumes
// from the store's have bitmap: a restarted host asks only for what it lacks.

import type { ImportedImage } from '../../images/image-entry.ts';
import type { ImageProgress } from '../../images/image-source.ts';
import type { ImageStore } from '../../images/image-store.ts';
import type { PartialImage } from '../../images/partial-image.ts';
import { type Log, silentLogger } from '../../log/logger.ts';
import { type ChunkFault, ChunkScheduler } from './chunk-scheduler.ts';
import {
  HolderRefusedError,
  HolderUnreachableError,
  NoHoldersError,
  PullStalledError,
  TruncatedAnswerError,
  WrongLengthError,
} from './errors.ts';
import type { HolderCandidate } from './holders.ts';
import type { ImageClient } from './image-client.ts';
import { fetchManifest } from './manifest-fetch.ts';

/** How far a pull is (the image source's progress report). */
export type PullProgress = ImageProgress;

export interface PullComponents {
  store: Pick<ImageStore, 'manifest' | 'beginPull'>;
  client: ImageClient;
  holders: {
    expectedManifest(digest: string): string | undefined;
    fromStore(digest: string): HolderCandidate[];
    fromDht(digest: string, signal: AbortSignal): Promise<HolderCandidate[]>;
  };
  /** Announces this host as a provider of the image (DHT); failures are logged, not fatal. */
  announce(digest: string): Promise<void>;
  log?: Log;
}

/** The bitmaps of partial holders a pull reads in a second, at most (when the interval is not at its floor). */
const BITMAP_READS_PER_SECOND = 8;

/**
 * How often a pull reads each partial holder's bitmap again with `partial` of them in the pull: a bitmap read
 * is how a puller learns of a peer's new chunks, and a 1 MiB chunk takes 84 ms at 100 Mbit/s, so with a
 * few peers every 250 ms (a 64 MiB image to 3 hosts: 1.39 × the bound against 1.49 × at 1 s); with more,
 * no more than BITMAP_READS_PER_SECOND reads a second in all (6 hosts every 250 ms: 2.54 × against 2.38 ×,
 * the reads costing the CPU that host count runs short of), and never less often than once a second.
 */
export function bitmapInterval(partial: number): number {
  return Math.min(1000, Math.max(250, Math.round((1000 * partial) / BITMAP_READS_PER_SECOND)));
}

export interface PullInit {
  /** Requests in flight per holder. Default 4. */
  maxPerPeer?: number;
  /** How often new holders are looked for (ms). Default 3 s. */
  refreshMs?: number;
  /** How often the bitmaps of partial holders in the pull are read again (ms). Default: by how many there
   *  are (bitmapInterval). */
  bitmapMs?: number;
  /** A pull with no chunk for this long and nothing in flight fails (ms). Default 60 s. */
  stallTimeoutMs?: number;
  /** Bad chunks a holder may send before it is dropped from the pull. Default 3. */
  maxStrikes?: number;
  random?: () => number;
}

/** Why a holder was counted against, for the logs and the tests. */
export interface Strike {
  peer: string;
  index: number;
  fault: 'corrupt' | 'truncated';
  message: string;
}

export class ImagePull {
  readonly digest: string;
  /** Bad chunks seen in this pull, by sender. */
  readonly strikes: Strike[] = [];
  readonly #c: PullComponents;
  readonly #init: PullInit;
  readonly #log: Log;
  readonly #onProgress: (p: PullProgress) => void;
  readonly #requests = new Map<string, AbortController>();
  readonly #lastError = new Map<string, string>();
  readonly #pausedUntil = new Map<string, number>();
  #wake: () => void = () => {};
  /** Set once run() has the manifest (the pull's chunk count and its partial copy); the getters below say
   *  so loudly if anything reaches them before. Only noticed() may run earlier, and reads #started. */
  #started: { sched: ChunkScheduler; partial: PartialImage } | undefined;
  #manifestDigest = '';
  #bytes = 0;
  #lastChunkAt = Date.now();
  #announced = false;
  #staleBitmaps = new Set<string>();
  #fatal: Error | undefined;
  #lookingUp: Promise<void> | undefined;
  readonly #writes = new Set<Promise<void>>();

  constructor(
    components: PullComponents,
    init: PullInit,
    digest: string,
    onProgress: (p: PullProgress) => void = () => {},
  ) {
    this.#c = components;
    this.#init = init;
    this.digest = digest;
    this.#log = components.log ?? silentLogger.root;
    this.#onProgress = onProgress;
  }

  get #sched(): ChunkScheduler {
    if (!this.#started) throw new Error(`the pull of ${this.digest} has not started`);
    return this.#started.sched;
  }

  get #partial(): PartialImage {
    if (!this.#started) throw new Error(`the pull of ${this.digest} has not started`);
    return this.#started.partial;
  }

  async run(signal: AbortSignal): Promise<ImportedImage> {
    const { digest } = this;
    const expected = await this.#expectedManifest(signal);
    this.#manifestDigest = expected;
    const manifestBytes = await fetchManifest(
      { store: this.#c.store, holders: this.#c.holders, client: this.#c.client },
      this.digest,
      expected,
      signal,
    );
    const partial = await this.#c.store.beginPull(manifestBytes, expected);
    const m = partial.manifest;
    const missing = partial.missing();
    const sched = new ChunkScheduler({
      chunks: m.chunks.length,
      missing,
      maxPerPeer: this.#init.maxPerPeer,
      maxStrikes: this.#init.maxStrikes,
      random: this.#init.random,
    });
    this.#started = { sched, partial };
    this.#bytes = m.size - missing.reduce((sum, i) => sum + this.#length(i), 0);
    if (this.#partial.haveCount() > 0) this.#announce();
    this.#progress();
    const refreshMs = this.#init.refreshMs ?? 3000;
    const bitmapMs = () => this.#init.bitmapMs ?? bitmapInterval(this.#sched.partialPeers);
    const stallMs = this.#init.stallTimeoutMs ?? 60_000;
    let refreshed = 0;
    let bitmapsRead = 0;
    let refreshing: Promise<void> | undefined;
    // Ends the lookups and requests still out once the pull ends, however it ends.
    const ended = new AbortController();
    const working = AbortSignal.any([signal, ended.signal]);
    try {
      while (!this.#sched.complete) {
        signal.throwIfAborted();
        if (this.#fatal) throw this.#fatal;
        // Made before anything can finish, so no completion between here and the wait is missed.
        const woken = new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        const now = Date.now();
        const due =
          now - refreshed >= refreshMs || (this.#sched.peers.length === 0 && now - refreshed >= 500);
        const bitmaps = now - bitmapsRead >= bitmapMs();
        if (!refreshing && (due || bitmaps || this.#staleBitmaps.size > 0)) {
          if (due) refreshed = now;
          if (bitmaps) bitmapsRead = now;
          // In the background: a holder that does not answer must not hold up the chunks of the others.
          refreshing = this.#refresh(working, { holders: due, bitmaps }).finally(() => {
            // With fresh bitmaps, a chunk a seed declined is asked of whoever got it, or of the seed again.
            if (bitmaps) this.#sched.forgetDeclined();
            refreshing = undefined;
            this.#wake();
          });
        }
        this.#pump(working);
        if (this.#sched.complete) break;
        if (this.#requests.size === 0 && !refreshing && now - this.#lastChunkAt > stallMs)
          throw new PullStalledError(digest, Math.round(stallMs / 1000), this.#why());
        await sleepUntil(woken, Math.min(bitmapMs(), refreshMs), signal);
      }
    } finally {
      ended.abort(new Error('pull ended'));
      await refreshing?.catch(() => {});
      await this.#lookingUp;
      await Promise.allSettled(this.#writes);
      // Stopped before the end: what was written is saved (the bitmap), and a later pull resumes from it.
      if (!this.#sched.complete || this.#fatal) await this.#partial.close().catch(() => {});
    }
    if (this.#fatal) throw this.#fatal;
    return this.#partial.complete(signal);
  }

  /** The manifest digest the holders list; waited for up to the stall timeout, as the Host objects of
   *  hosts that have just got the image (an upload, a download) may not have reached this host yet. */
  async #expectedManifest(signal: AbortSignal): Promise<string> {
    const until = Date.now() + (this.#init.stallTimeoutMs ?? 60_000);
    for (;;) {
      const expected = this.#c.holders.expectedManifest(this.digest);
      if (expected) return expected;
      if (Date.now() >= until)
        throw new NoHoldersError(
          this.digest,
          'no host lists it in Host.status.images; upload it first (xenosctl image push)',
        );
      await sleepUntil(new Promise(() => {}), 500, signal);
    }
  }

  /** Looks for holders not in the pull (`holders`: the store's at once, the DHT's in the background), and
   *  re-reads the bitmaps of the partial holders in it (`bitmaps`: their new chunks become usable) and of
   *  those that answered ChunkNotHeld. */
  async #refresh(signal: AbortSignal, due: { holders: boolean; bitmaps: boolean }): Promise<void> {
    const ask = new Map<string, HolderCandidate>();
    for (const peer of this.#staleBitmaps) ask.set(peer, { peerId: peer });
    this.#staleBitmaps.clear();
    if (due.bitmaps)
      for (const peer of this.#sched.peers) if (!this.#sched.hasAll(peer)) ask.set(peer, { peerId: peer });
    if (due.holders) {
      for (const c of this.#c.holders.fromStore(this.digest))
        if (!this.#sched.has(c.peerId)) ask.set(c.peerId, c);
      // The DHT may take seconds: what it finds joins when it comes, the others do not wait for it.
      this.#lookingUp ??= this.#c.holders
        .fromDht(this.digest, signal)
        .then((found) =>
          this.#admit(
            found.filter((c) => !this.#sched.has(c.peerId)),
            signal,
          ),
        )
        .catch((err) => {
          if (!signal.aborted)
            this.#log.warn({ err }, `looking for holders of ${this.digest}: ${err.message}`);
        })
        .finally(() => {
          this.#lookingUp = undefined;
          this.#wake();
        });
    }
    await this.#admit([...ask.values()], signal);
  }

  /** Reads the bitmaps of `candidates` and takes into the pull those that cut the image by its manifest. */
  async #admit(candidates: HolderCandidate[], signal: AbortSignal): Promise<void> {
    const chunks = this.#partial.manifest.chunks.length;
    await Promise.all(
      candidates
        .filter((c) => !this.#sched.isDropped(c.peerId))
        .map(async (c) => {
          try {
            const answer = await this.#c.client.have(c.peerId, this.digest, chunks, signal);
            if (answer.manifest !== this.#manifestDigest) {
              this.#leave(
                c.peerId,
                `it cuts the image by manifest ${answer.manifest}, not ${this.#manifestDigest}`,
              );
              return;
            }
            if (this.#sched.setPeer(c.peerId, answer.bytes)) this.#lastError.delete(c.peerId);
            for (const peer of answer.peers ?? []) this.noticed(peer);
          } catch (err) {
            if (signal.aborted) return;
            this.#leave(c.peerId, (err as Error).message);
          }
        }),
    );
  }

  /** `peer` pulls this image too (it asked this host for it, or a holder named it): its bitmap is read at
   *  the next turn, and it joins the pull once it answers. */
  noticed(peer: string): void {
    const sched = this.#started?.sched;
    if (sched?.has(peer) || sched?.isDropped(peer) || this.#staleBitmaps.has(peer)) return;
    this.#staleBitmaps.add(peer);
    this.#wake();
  }

  /** Fills every holder's request slots. */
  #pump(signal: AbortSignal): void {
    const now = Date.now();
    for (const peer of this.#sched.peers) {
      if ((this.#pausedUntil.get(peer) ?? 0) > now) continue;
      for (let i = this.#sched.next(peer); i !== undefined; i = this.#sched.next(peer))
        this.#request(peer, i, signal);
    }
  }

  #request(peer: string, index: number, signal: AbortSignal): void {
    const key = `${peer} ${index}`;
    const ac = new AbortController();
    this.#requests.set(key, ac);
    const length = this.#length(index);
    const request = { digest: this.digest, manifest: this.#manifestDigest, index, length };
    this.#c.client
      .chunk(peer, request, AbortSignal.any([signal, ac.signal]))
      .then(async (bytes) => {
        const writing = this.#partial.writeChunk(index, bytes);
        this.#writes.add(writing);
        try {
          await writing;
        } catch (err) {
          // A chunk that does not match its manifest entry is the sender's fault; anything else (a full
          // disk) is this host's, and ends the pull.
          if ((err as Error).name !== 'ChunkHashMismatchError') this.#fatal ??= err as Error;
          throw err;
        } finally {
          this.#writes.delete(writing);
        }
        // An endgame copy that lost the race changes nothing (the store kept the first).
        const first = this.#sched.isMissing(index);
        for (const other of this.#sched.done(index, peer))
          this.#requests.get(`${other} ${index}`)?.abort(new Error('got it elsewhere'));
        if (!first) return;
        this.#bytes += length;
        this.#lastChunkAt = Date.now();
        if (!this.#announced) this.#announce();
        this.#progress();
      })
      .catch((err: Error) => {
        if (signal.aborted || ac.signal.aborted || this.#fatal) return; // stopping, or a copy arrived first
        this.#failed(peer, index, err);
      })
      .finally(() => {
        if (this.#requests.get(key) === ac) this.#requests.delete(key);
        this.#wake();
      });
  }

  #failed(peer: string, index: number, err: Error): void {
    this.#lastError.set(peer, err.message);
    const fault: ChunkFault =
      err instanceof TruncatedAnswerError
        ? 'truncated'
        : err instanceof WrongLengthError || err.name === 'ChunkHashMismatchError'
          ? 'corrupt'
          : 'none';
    if (fault === 'corrupt' || fault === 'truncated') {
      this.strikes.push({ peer, index, fault, message: err.message });
      const { dropped } = this.#sched.failed(index, peer, fault);
      this.#log.warn(
        { peer, digest: this.digest, index, fault },
        `chunk ${index} of ${this.digest} from peer ${peer} refused (${fault}): ${err.message}` +
          (dropped ? '; that peer is dropped from this pull' : '; asking another holder'),
      );
      if (dropped) this.#abortPeer(peer);
      return;
    }
    if (err instanceof HolderRefusedError && err.code === 'Declined') {
      // A seed's first pass: the chunk went to another peer just now; ask the seed for what it offers.
      this.#sched.declined(index, peer, err.offer);
      return;
    }
    const missing = err instanceof HolderRefusedError && err.code === 'ChunkNotHeld';
    this.#sched.failed(index, peer, missing ? 'missing' : 'none');
    if (err instanceof HolderRefusedError && (missing || err.code === 'Busy')) {
      // A partial holder whose bitmap we read before it lost the chunk, or a busy one: look again shortly.
      this.#pausedUntil.set(peer, Date.now() + 1000);
      if (err.code === 'ChunkNotHeld') this.#staleBitmaps.add(peer);
      return;
    }
    // Unreachable, not holding it any more, another manifest: it leaves the pull (its in-flight chunks are
    // freed); the next refresh takes it back if it answers again.
    this.#leave(
      peer,
      err instanceof HolderUnreachableError || err instanceof HolderRefusedError
        ? err.message
        : `${err.name}: ${err.message}`,
    );
  }

  #leave(peer: string, why: string): void {
    this.#lastError.set(peer, why);
    if (!this.#sched.has(peer)) return;
    this.#log.info({ peer, digest: this.digest }, `peer ${peer} leaves the pull of ${this.digest}: ${why}`);
    this.#sched.removePeer(peer);
    this.#abortPeer(peer);
  }

  #abortPeer(peer: string): void {
    for (const [key, ac] of this.#requests)
      if (key.startsWith(`${peer} `)) ac.abort(new Error('holder left the pull'));
  }

  #announce(): void {
    this.#announced = true;
    this.#c
      .announce(this.digest)
      .catch((err) => this.#log.warn({ err }, `announcing ${this.digest} in the DHT: ${err.message}`));
  }

  #progress(): void {
    const size = this.#partial.manifest.size;
    this.#onProgress({
      digest: this.digest,
      bytes: this.#bytes,
      size,
      percent: size === 0 ? 100 : Math.floor((this.#bytes * 100) / size),
      holders: this.#sched.peers.length,
    });
  }

  #length(index: number): number {
    const m = this.#partial.manifest;
    return Math.min(m.chunkSize, m.size - index * m.chunkSize);
  }

  #why(): string {
    const unavailable = this.#sched.unavailable().length;
    const errors = [...this.#lastError].map(([p, e]) => `peer ${p}: ${e}`);
    return (
      `${this.#sched.remaining} chunks missing, ${unavailable} of them held by no reachable holder` +
      (errors.length ? `; ${errors.slice(0, 5).join('; ')}` : '; no holder answered')
    );
  }
}

/** Resolves when `woken` does or after `ms`, whichever first; rejects when `signal` aborts. */
function sleepUntil(woken: Promise<void>, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', onAbort, { once: true });
    woken.then(done);
  });
}
