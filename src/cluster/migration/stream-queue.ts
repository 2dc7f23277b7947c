// The streams of one incoming migration, handed to the driver's `migrateIn` as an IncomingMigration in
// the order the source opened them (by `seq`), whatever order their dials won in. Fails when the
// migration is cut off (the iterator throws); closed once the migration is over here.

import type { Duplex } from 'node:stream';

export interface LabelledStream {
  label: string;
  stream: Duplex;
}

export class StreamQueue implements AsyncIterable<LabelledStream> {
  #next = 0;
  readonly #waiting = new Map<number, LabelledStream>();
  #wake: (() => void) | undefined;
  #error: Error | undefined;
  #closed = false;

  /** Adds stream `seq`; false (and nothing added) when that seq came already or the queue is over. */
  put(seq: number, item: LabelledStream): boolean {
    if (this.#closed || this.#error || seq < this.#next || this.#waiting.has(seq)) return false;
    this.#waiting.set(seq, item);
    this.#wakeUp();
    return true;
  }

  /** The migration was cut off: the reader's next step throws `err`; streams not yet taken are reset. */
  fail(err: Error): void {
    if (this.#closed || this.#error) return;
    this.#error = err;
    this.#drop(err);
    this.#wakeUp();
  }

  /** The migration is over here: the reader's loop ends; streams not yet taken are reset. */
  close(): void {
    this.#closed = true;
    this.#drop(new Error('the migration ended on the target'));
    this.#wakeUp();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<LabelledStream> {
    for (;;) {
      if (this.#error) throw this.#error;
      const item = this.#waiting.get(this.#next);
      if (item) {
        this.#waiting.delete(this.#next);
        this.#next++;
        yield item;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  #drop(err: Error): void {
    for (const { stream } of this.#waiting.values()) stream.destroy(err);
    this.#waiting.clear();
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
