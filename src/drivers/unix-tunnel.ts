// The local ends of a migration tunnel. QEMU speaks its migration stream and NBD over unix sockets in its
// own vm/ directory (the only place its sandbox can reach); Xen's `xl migrate` speaks through a helper
// that connects to one. xenosd bridges each connection to one MigrationTransport stream: on the source
// xenosd listens and QEMU (or the helper) connects; on a QEMU destination QEMU listens and xenosd connects.
// A bridge pipes both ways with backpressure (a side that cannot take more pauses the other; the
// transport's own send cap keeps little queued, because every byte queued in the tunnel at the switchover
// adds to the guest's pause) and half-closes both ways; an error on either side destroys both.

import { chown, open, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Identity } from './sandbox/bwrap-plan.ts';

/** The longest path a unix socket address holds (sun_path is 108 bytes with its NUL). */
const SUN_PATH_MAX = 107;

/** Runs `fn` with an address for `path` that fits a socket address: the path itself, or, when it is
 *  longer, the same file reached through an fd of its directory (a data dir may be deep). */
async function withShortPath<T>(path: string, fn: (address: string) => Promise<T>): Promise<T> {
  if (Buffer.byteLength(path) <= SUN_PATH_MAX) return fn(path);
  const dir = await open(dirname(path), 'r');
  try {
    return await fn(`/proc/self/fd/${dir.fd}/${basename(path)}`);
  } finally {
    await dir.close();
  }
}

/** Listens on the unix socket `path` (replacing a stale one), connectable by `owner` (the sandboxed
 *  QEMU's uid) when given. Each accepted connection goes to `onConnection`. */
export async function listenUnix(
  path: string,
  owner: Identity | undefined,
  onConnection: (socket: Socket) => void,
): Promise<Server> {
  await rm(path, { force: true });
  const server = createServer({ allowHalfOpen: true }, onConnection);
  await withShortPath(
    path,
    (address) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(address, () => {
          server.off('error', reject);
          resolve();
        });
      }),
  );
  if (owner) await chown(path, owner.uid, owner.gid);
  return server;
}

/** Closes `server` (connections already bridged go on) and removes its socket file. */
export async function closeListener(server: Server | undefined, path: string): Promise<void> {
  if (server?.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(path, { force: true });
}

/** Connects to the unix socket at `path`. */
export function connectUnix(path: string, signal?: AbortSignal): Promise<Socket> {
  return withShortPath(
    path,
    (address) =>
      new Promise<Socket>((resolve, reject) => {
        const socket = connect({ path: address, allowHalfOpen: true });
        const onAbort = () => socket.destroy(signal?.reason as Error);
        signal?.addEventListener('abort', onAbort, { once: true });
        socket.once('connect', () => {
          signal?.removeEventListener('abort', onAbort);
          socket.off('error', reject);
          resolve(socket);
        });
        socket.once('error', (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        });
      }),
  );
}

/** A running bridge between a local socket and a transport stream. */
export interface Bridge {
  /** Bytes that went from the socket to the stream (what this side sent). */
  readonly sent: number;
  /** Milliseconds the socket spent waiting for a full stream (the link was the bottleneck). */
  readonly stalledMs: number;
  /** Resolves when both directions ended, or either side failed (never rejects). */
  readonly done: Promise<{ error?: Error }>;
  /** Tears both sides down. */
  destroy(err?: Error): void;
}

/** Pipes `socket` ⇄ `stream` with backpressure both ways and half-close both ways. */
export function bridge(socket: Duplex, stream: Duplex): Bridge {
  let sent = 0;
  let stalledMs = 0;
  let stalledSince: number | undefined;
  let settled = false;
  const { promise, resolve } = Promise.withResolvers<{ error?: Error }>();
  let endedOut = false;
  let endedIn = false;
  const finish = (error?: Error) => {
    if (settled) return;
    settled = true;
    if (error) {
      socket.destroy();
      stream.destroy(error);
    }
    resolve({ error });
  };
  const onError = (err: Error) => finish(err);
  socket.on('error', onError);
  stream.on('error', onError);
  socket.on('close', () => {
    if (!endedOut || !endedIn) finish(new Error('the local socket closed before the transfer ended'));
  });
  stream.on('close', () => {
    if (!endedOut || !endedIn) finish(new Error('the transport stream closed before the transfer ended'));
  });
  socket.on('data', (chunk: Buffer) => {
    sent += chunk.length;
    if (!stream.write(chunk)) {
      stalledSince = performance.now();
      socket.pause();
    }
  });
  stream.on('drain', () => {
    if (stalledSince !== undefined) stalledMs += performance.now() - stalledSince;
    stalledSince = undefined;
    socket.resume();
  });
  socket.on('end', () => {
    endedOut = true;
    stream.end();
    if (endedIn) finish();
  });
  stream.on('data', (chunk: Buffer) => {
    if (!socket.write(chunk)) stream.pause();
  });
  socket.on('drain', () => stream.resume());
  stream.on('end', () => {
    endedIn = true;
    socket.end();
    if (endedOut) finish();
  });
  return {
    get sent() {
      return sent;
    },
    get stalledMs() {
      return stalledMs + (stalledSince === undefined ? 0 : performance.now() - stalledSince);
    },
    done: promise,
    destroy: (err) => finish(err ?? new Error('the bridge was torn down')),
  };
}
