// The control stream of a VM migration (QEMU live and cold, Xen live and save/restore): JSON lines both ways
// between the source's and the destination's driver (label `control`, the first stream the source opens).
// It carries the machine's shape, the destination's readiness, the clock samples, the source's go (or
// abort) and the destination's answer. Lines are size-capped; anything else from the peer is an error,
// not a guess.

import type { Duplex } from 'node:stream';
import type { IncomingMigration } from './driver.ts';
import { MigrationError } from './errors.ts';

export const CONTROL_LABEL = 'control';
export const MEMORY_LABEL = 'memory';
export const DISK_LABEL = 'disk';
/** Xen live: the stream between `xl migrate` and `xl migrate-receive`, both ways. */
export const XL_LABEL = 'xl';
/** The version of the messages below; the destination refuses another. */
export const CONTROL_VERSION = 1;
const MAX_LINE_BYTES = 64 * 1024;

export interface DiskShape {
  name: string;
  /** The guest-visible size: both sides' overlays must match. */
  virtualSize: number;
  readOnly: boolean;
}

export type ControlMessage =
  | {
      type: 'hello';
      version: number;
      mode: 'live' | 'cold';
      memoryMiB: number;
      vcpus: number;
      disks: DiskShape[];
      /** Xen: the guest's address on the user network, which it keeps (the destination must give it). */
      address?: string;
    }
  /** The destination waits for the memory stream (QEMU: and exports its disks). `config` (Xen live) is
   *  its xl config for the domain, with its own disk paths: the source sends it with the stream. */
  | { type: 'ready'; config?: string }
  /** Xen live: the destination holds the disk layer the source sent while the stream waited. */
  | { type: 'received' }
  | { type: 'refuse'; reason: string }
  /** A clock sample: `t0` on the source's clock. */
  | { type: 'ping'; t0: number }
  /** `t1`: the destination's clock when the ping came. */
  | { type: 'pong'; t0: number; t1: number }
  /** The move is committed: run the guest. */
  | { type: 'go' }
  /** The move is off: remove what you made. */
  | { type: 'abort'; reason: string }
  /** The guest runs on the destination; `resumedAtMs` is its RESUME event time (destination clock). */
  | { type: 'resumed'; resumedAtMs: number }
  /** Cold: the destination started the guest, or could not. */
  | { type: 'started'; ok: boolean; error?: string };

type Waiter = { type: string; resolve(m: ControlMessage): void; reject(err: Error): void };

/** One side's view of the control stream. */
export class ControlChannel {
  readonly stream: Duplex;
  private buffer = '';
  private readonly queue: ControlMessage[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly handlers = new Map<string, (m: ControlMessage) => void>();
  private failure?: Error;

  constructor(stream: Duplex) {
    this.stream = stream;
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => this.take(chunk));
    stream.on('end', () => this.fail(new Error('the peer closed the control stream')));
    stream.on('error', (err) => this.fail(new Error(`the control stream failed: ${err.message}`)));
    stream.on('close', () => this.fail(new Error('the control stream closed')));
  }

  /** Whether the stream failed or ended (and why). */
  get error(): Error | undefined {
    return this.failure;
  }

  send(message: ControlMessage): void {
    if (!this.failure && this.stream.writable) this.stream.write(`${JSON.stringify(message)}\n`);
  }

  /** Messages of `type` go to `fn` as they come instead of the queue (the clock's pings). */
  handle(type: ControlMessage['type'], fn: (m: ControlMessage) => void): void {
    this.handlers.set(type, fn);
  }

  /** The next message of one of `types` (others are dropped), within `timeoutMs`. */
  next<T extends ControlMessage['type']>(
    types: T[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<Extract<ControlMessage, { type: T }>> {
    const i = this.queue.findIndex((m) => types.includes(m.type as T));
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0] as Extract<ControlMessage, { type: T }>);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error(`no ${types.join(' or ')} from the peer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = () => done(signal?.reason as Error);
      signal?.addEventListener('abort', onAbort, { once: true });
      const waiter: Waiter = {
        type: types.join('|'),
        resolve: (m) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(m as Extract<ControlMessage, { type: T }>);
        },
        reject: (err) => done(err),
      };
      const done = (err: Error) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(err);
      };
      this.waiters.push(waiter);
      if (signal?.aborted) onAbort();
    });
  }

  /** Ends our side politely (the peer reads the end). */
  end(): void {
    if (this.stream.writable) this.stream.end();
  }

  destroy(): void {
    this.stream.destroy();
  }

  private take(chunk: string): void {
    this.buffer += chunk;
    if (this.buffer.length > MAX_LINE_BYTES && !this.buffer.includes('\n')) {
      this.fail(new Error(`a control line longer than ${MAX_LINE_BYTES} bytes`));
      this.stream.destroy();
      return;
    }
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      let message: ControlMessage;
      try {
        message = JSON.parse(line) as ControlMessage;
        if (typeof message?.type !== 'string') throw new Error('no type');
      } catch {
        this.fail(new Error(`the peer sent a control line that is not a message: ${line.slice(0, 100)}`));
        this.stream.destroy();
        return;
      }
      this.deliver(message);
    }
  }

  private deliver(message: ControlMessage): void {
    const handler = this.handlers.get(message.type);
    if (handler) {
      handler(message);
      return;
    }
    const waiter = this.waiters.find((w) => w.type.split('|').includes(message.type));
    if (!waiter) {
      this.queue.push(message);
      return;
    }
    this.waiters.splice(this.waiters.indexOf(waiter), 1);
    waiter.resolve(message);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
  }
}

const NEVER_MS = 24 * 3600_000;

/** Resolves on the source's go, or on the commit seen elsewhere; rejects on the source's abort, on the
 *  control stream lost while no commit can come another way, or on `signal`. */
export function goAhead(
  control: ControlChannel,
  options: { signal?: AbortSignal; committed?: Promise<void> },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const { signal, committed } = options;
    const onAbort = () => reject(signal?.reason);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (fn: () => void) => () => {
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    committed?.then(done(resolve), () => {});
    control.next(['go', 'abort'], NEVER_MS).then(
      (m) =>
        m.type === 'go'
          ? done(resolve)()
          : done(() => reject(new Error(`the source gave up: ${m.reason}`)))(),
      (err: Error) => {
        // The link is gone: with no other word of a commit, nothing will start this copy.
        if (!committed) done(() => reject(new Error(`no go from the source: ${err.message}`)))();
      },
    );
  });
}

/** `promise`, or a MigrationError as soon as `signal` aborts (nothing came before the caller gave up). */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, id: string): Promise<T> {
  if (!signal) return promise;
  return new Promise((resolve, reject) => {
    const onAbort = () =>
      reject(
        new MigrationError(id, `no stream came before: ${(signal.reason as Error)?.message ?? 'aborted'}`),
      );
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** The destination's first steps: the control stream (the first the source opens; `onControl` sees it
 *  before anything is read from it) and the source's hello, refused when this spec (`mine`) cannot take
 *  what it describes. */
export async function acceptMigration(
  id: string,
  incoming: IncomingMigration,
  mine: () => Promise<Parameters<typeof helloMismatch>[1]>,
  options: { signal?: AbortSignal; onControl?(control: ControlChannel): void } = {},
): Promise<{
  control: ControlChannel;
  streams: AsyncIterator<{ label: string; stream: Duplex }>;
  hello: Extract<ControlMessage, { type: 'hello' }>;
}> {
  const streams = incoming[Symbol.asyncIterator]();
  const first = await abortable(streams.next(), options.signal, id);
  if (first.done) throw new MigrationError(id, 'the source opened no stream');
  if (first.value.label !== CONTROL_LABEL) {
    first.value.stream.destroy();
    throw new MigrationError(id, `the first stream is "${first.value.label}", not "${CONTROL_LABEL}"`);
  }
  const control = new ControlChannel(first.value.stream);
  options.onControl?.(control);
  const hello = await control.next(['hello'], 30_000, options.signal).catch((err: Error) => {
    control.destroy();
    throw new MigrationError(id, `no hello from the source: ${err.message}`, { cause: err });
  });
  const mismatch = helloMismatch(hello, await mine());
  if (mismatch) {
    control.send({ type: 'refuse', reason: mismatch });
    control.end();
    throw new MigrationError(id, mismatch);
  }
  return { control, streams, hello };
}

/** Why the destination cannot take what the source's hello describes (another control version, another
 *  machine shape, other disks than its own spec's), or undefined when it can. */
export function helloMismatch(
  hello: Extract<ControlMessage, { type: 'hello' }>,
  mine: { memoryMiB: number; vcpus: number; disks: { name: string; readOnly: boolean }[] },
): string | undefined {
  if (hello.version !== CONTROL_VERSION)
    return `control version ${hello.version} (this host speaks ${CONTROL_VERSION})`;
  if (hello.memoryMiB !== mine.memoryMiB || hello.vcpus !== mine.vcpus)
    return `the source guest has ${hello.memoryMiB} MiB and ${hello.vcpus} vcpus; this spec asks for ${mine.memoryMiB} MiB and ${mine.vcpus}`;
  const names = (list: { name: string; readOnly: boolean }[]) =>
    list.map((d) => `${d.name}${d.readOnly ? ' (ro)' : ''}`).join(', ');
  if (names(mine.disks) !== names(hello.disks))
    return `the source has disks [${names(hello.disks)}], this spec [${names(mine.disks)}]`;
  return undefined;
}
