// The queue between watches and reconcile workers, after client-go's workqueue. It holds keys only
// and merges duplicates: a key added while it waits is queued once; a key added while a worker holds
// it is processed again after that worker calls `done`, never by two workers at once. Keys can be
// added after a delay (the earliest pending delay wins) or after the rate limiter's backoff.

import { defaultRateLimiter, type RateLimiter } from './rate-limiter.ts';

export class WorkQueue {
  private readonly rateLimiter: RateLimiter;
  private readonly queue: string[] = [];
  /** Keys that need processing (queued, or re-added while processing). */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  /** Delayed adds: key → due time and timer (only the earliest is kept). */
  private readonly waiting = new Map<string, { due: number; timer: NodeJS.Timeout }>();
  private readonly getters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;

  constructor(init: { rateLimiter?: RateLimiter } = {}) {
    this.rateLimiter = init.rateLimiter ?? defaultRateLimiter();
  }

  /** Queue `key` now unless it is already queued. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const getter = this.getters.shift();
    if (getter) {
      this.dirty.delete(key);
      this.processing.add(key);
      getter(key);
    } else {
      this.queue.push(key);
    }
  }

  /** Queue `key` after `delayMs`; an earlier pending delay for the same key is kept. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const due = Date.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing && existing.due <= due) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref?.();
    this.waiting.set(key, { due, timer });
  }

  /** Queue `key` after its backoff (one more failure) and the overall rate limit. */
  addRateLimited(key: string): number {
    const delay = this.rateLimiter.when(key);
    this.addAfter(key, delay);
    return delay;
  }

  /** `key` succeeded (or will never succeed): reset its backoff. */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  retries(key: string): number {
    return this.rateLimiter.retries(key);
  }

  /** Wait for the next key; `undefined` once the queue is shut down. Call `done(key)` afterwards. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.dirty.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** A worker finished `key`; if it was re-added meanwhile, it is queued again. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) {
      this.dirty.delete(key);
      this.add(key);
    }
  }

  /** Keys waiting to be handed out (not counting delayed or in-progress ones). */
  get length(): number {
    return this.queue.length;
  }

  /** Keys whose delayed add has not fired yet. */
  get delayed(): number {
    return this.waiting.size;
  }

  isProcessing(key: string): boolean {
    return this.processing.has(key);
  }

  /** Stop handing out keys: pending `get()`s resolve to undefined, timers are cleared. */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
    this.queue.length = 0;
    this.dirty.clear();
    for (const getter of this.getters.splice(0)) getter(undefined);
  }

  get isShutDown(): boolean {
    return this.shuttingDown;
  }
}
