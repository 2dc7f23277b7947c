// One operation at a time per key (a domain id) within this process: a driver's start, stop, destroy and
// migration of the same domain queue behind each other, while different domains proceed in parallel. A
// failed operation does not block the next.

export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `fn` once every earlier operation on `key` has ended. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.tails.get(key) ?? Promise.resolve()).catch(() => {}).then(fn);
    this.tails.set(key, next);
    next
      .finally(() => {
        if (this.tails.get(key) === next) this.tails.delete(key);
      })
      .catch(() => {});
    return next;
  }
}
