// A client for QEMU's machine protocol (QMP) over the unix socket a guest's QEMU listens on: it reads the
// greeting, negotiates capabilities, runs commands (each with its own id, so several may be in flight),
// and hands out the asynchronous events QEMU sends (STOP, RESUME, SHUTDOWN, BLOCK_JOB_READY, MIGRATION...)
// with QEMU's own timestamp kept, because migration measures the guest's pause from them. The wire is one
// JSON object per line (docs/interop/qmp-spec in QEMU's tree). Written by hand: the protocol is small and
// no npm library for it is kept up or trusted by the field.
// Over 400 lines because a QMP client is one connection's state machine: greeting, capabilities, commands,
// events and their timeouts.

import { EventEmitter, on } from 'node:events';
import { open } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { QmpCommandError, QmpConnectionError, QmpTimeoutError } from './errors.ts';

/** QMP's event timestamp: wall-clock time on the QEMU host when the event happened. */
export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: QmpTimestamp;
}

/** QEMU's version, from the greeting. */
export interface QmpVersion {
  major: number;
  minor: number;
  micro: number;
  package: string;
}

export interface QmpConnectOptions {
  /** For error messages: whose QEMU this is. */
  domainId?: string;
  /** How long to keep trying while the socket does not exist or refuses (QEMU still starting), and then to
   *  wait for the greeting. Default 10 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Default timeout of `execute`. Default 30 s. */
  commandTimeoutMs?: number;
}

export interface QmpExecuteOptions {
  signal?: AbortSignal;
  /** Default: the client's `commandTimeoutMs`. */
  timeoutMs?: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
const CONNECT_RETRY_MS = 50;

/** Milliseconds since the epoch of a QMP timestamp (fractional: microseconds kept). */
export function qmpTimeMs(timestamp: QmpTimestamp): number {
  return timestamp.seconds * 1000 + timestamp.microseconds / 1000;
}

interface Pending {
  command: string;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

type Message = Record<string, unknown>;

export class QmpClient {
  readonly socketPath: string;
  /** QEMU's version, from the greeting. */
  readonly version: QmpVersion;
  /** Resolves when the connection is gone (QEMU exited, the socket broke, or `close()`). */
  readonly closed: Promise<void>;

  private readonly socket: Socket;
  private readonly domainId?: string;
  private readonly commandTimeoutMs: number;
  private readonly pending = new Map<string, Pending>();
  private readonly emitter = new EventEmitter();
  private nextId = 1;
  private isClosed = false;
  private closeReason?: string;

  /** Connects to the QMP socket at `socketPath` and negotiates capabilities. */
  static async connect(socketPath: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const timeoutSignal = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeoutSignal]) : timeoutSignal;
    const fail = (message: string, cause?: unknown) =>
      new QmpConnectionError(socketPath, message, options.domainId, { cause });
    let socket: Socket;
    for (;;) {
      options.signal?.throwIfAborted();
      try {
        socket = await openSocket(socketPath, signal);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        options.signal?.throwIfAborted();
        const notYet = code === 'ENOENT' || code === 'ECONNREFUSED';
        if (notYet && Date.now() + CONNECT_RETRY_MS < deadline) {
          await sleep(CONNECT_RETRY_MS, undefined, { signal: options.signal });
          continue;
        }
        if (notYet || timeoutSignal.aborted) {
          throw fail(`no connection within ${timeoutMs} ms (${(err as Error).message})`, err);
        }
        throw fail(`cannot connect: ${(err as Error).message}`, err);
      }
    }
    const lines = lineReader(socket);
    try {
      const greeting = await firstMessage(socket, lines, signal);
      const qmp = greeting?.QMP as { version?: { qemu?: QmpVersion; package?: string } } | undefined;
      if (!qmp) throw fail(`expected a QMP greeting, got ${JSON.stringify(greeting).slice(0, 200)}`);
      const version = {
        ...(qmp.version?.qemu ?? { major: 0, minor: 0, micro: 0 }),
        package: qmp.version?.package ?? '',
      };
      const client = new QmpClient(socketPath, socket, lines, version, options);
      await client.execute('qmp_capabilities', undefined, { signal, timeoutMs });
      return client;
    } catch (err) {
      socket.destroy();
      options.signal?.throwIfAborted();
      if (timeoutSignal.aborted) {
        // A second client waits unanswered while another holds QEMU's monitor: say so.
        throw fail(`no QMP greeting within ${timeoutMs} ms (is another client connected to this monitor?)`);
      }
      throw err;
    }
  }

  private constructor(
    socketPath: string,
    socket: Socket,
    lines: LineReader,
    version: QmpVersion,
    options: QmpConnectOptions,
  ) {
    this.socketPath = socketPath;
    this.socket = socket;
    this.version = version;
    this.domainId = options.domainId;
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    // Events must not throw on a missing listener, and many waiters may listen at once.
    this.emitter.setMaxListeners(0);
    lines.onMessage = (message) => this.dispatch(message);
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.isClosed = true;
        const reason = this.closeReason ?? 'the connection closed (QEMU exited?)';
        for (const [id, p] of this.pending) {
          this.pending.delete(id);
          p.reject(new QmpConnectionError(this.socketPath, `${p.command}: ${reason}`, this.domainId));
        }
        this.emitter.emit('close');
        resolve();
      });
    });
    socket.on('error', (err) => {
      this.closeReason ??= `the connection failed: ${err.message}`;
    });
    lines.flush();
  }

  /** Whether the connection is still open. */
  get connected(): boolean {
    return !this.isClosed;
  }

  /** Runs `command` with `args` and resolves with its `return` value; rejects with QmpCommandError when
   *  QEMU refuses it, QmpTimeoutError when no answer comes in time, QmpConnectionError when the monitor goes. */
  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    options: QmpExecuteOptions = {},
  ): Promise<T> {
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    if (this.isClosed) {
      return Promise.reject(
        new QmpConnectionError(
          this.socketPath,
          `${command}: ${this.closeReason ?? 'the connection is closed'}`,
          this.domainId,
        ),
      );
    }
    const id = `xenos-${this.nextId++}`;
    const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.pending.delete(id);
      };
      // A late answer to an abandoned command finds no pending entry and is dropped.
      const timer = setTimeout(() => {
        done();
        reject(new QmpTimeoutError(command, timeoutMs, this.domainId));
      }, timeoutMs);
      const onAbort = () => {
        done();
        reject(options.signal?.reason);
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        command,
        resolve: (value) => {
          done();
          resolve(value as T);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      });
      const message: Message = { execute: command, id };
      if (args !== undefined) message.arguments = args;
      this.socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  /** Calls `listener` for every event from now on; returns the function that stops it. */
  onEvent(listener: (event: QmpEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }

  /** Every event from now on, buffered until read; ends when the connection closes or `signal` aborts. */
  async *events(options: { signal?: AbortSignal } = {}): AsyncGenerator<QmpEvent> {
    if (this.isClosed) return;
    const stop = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    const onClose = () => stop.abort();
    this.emitter.once('close', onClose);
    try {
      for await (const [event] of on(this.emitter, 'event', { signal })) yield event as QmpEvent;
    } catch (err) {
      if (!stop.signal.aborted) throw err;
    } finally {
      this.emitter.off('close', onClose);
    }
  }

  /** The first event named `name` (and matching `match`, when given) from now on. Subscribe BEFORE running
   *  the command that causes it: `const ready = qmp.waitForEvent('RESUME'); await qmp.execute('cont')`.
   *  So a wait is often made before awaits that may throw and leave it unawaited: its failure (the abort,
   *  the timeout, the connection closing) is never an unhandled rejection; whoever awaits it still gets it. */
  waitForEvent(
    name: string,
    options: { match?: (event: QmpEvent) => boolean; signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<QmpEvent> {
    const waiting = this.eventOnce(name, options);
    waiting.catch(() => {});
    return waiting;
  }

  private eventOnce(
    name: string,
    options: { match?: (event: QmpEvent) => boolean; signal?: AbortSignal; timeoutMs?: number },
  ): Promise<QmpEvent> {
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    return new Promise((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
      const finish = () => {
        clearTimeout(timer);
        off();
        this.emitter.off('close', onClose);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const off = this.onEvent((event) => {
        if (event.event !== name || (options.match && !options.match(event))) return;
        finish();
        resolve(event);
      });
      const timer = setTimeout(() => {
        finish();
        reject(new QmpTimeoutError(`(waiting for event ${name})`, timeoutMs, this.domainId));
      }, timeoutMs);
      const onClose = () => {
        finish();
        reject(
          new QmpConnectionError(this.socketPath, `closed while waiting for event ${name}`, this.domainId),
        );
      };
      const onAbort = () => {
        finish();
        reject(options.signal?.reason);
      };
      this.emitter.once('close', onClose);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (this.isClosed) onClose();
    });
  }

  /** Closes the connection (QEMU keeps running). Commands in flight fail. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.closeReason ??= 'the client closed the connection';
    this.socket.destroy();
    await this.closed;
  }

  private dispatch(message: Message): void {
    if (typeof message.event === 'string') {
      const event: QmpEvent = {
        event: message.event,
        timestamp: (message.timestamp as QmpTimestamp | undefined) ?? nowTimestamp(),
      };
      if (message.data !== undefined) event.data = message.data as Record<string, unknown>;
      this.emitter.emit('event', event);
      return;
    }
    // An answer without our id (QEMU could not parse a request) belongs to the oldest command in flight.
    const id = typeof message.id === 'string' ? message.id : this.pending.keys().next().value;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p) return;
    if ('error' in message) {
      const error = message.error as { class?: string; desc?: string };
      p.reject(
        new QmpCommandError(
          p.command,
          error.class ?? 'GenericError',
          error.desc ?? 'no description',
          this.domainId,
        ),
      );
    } else {
      p.resolve(message.return);
    }
  }
}

function nowTimestamp(): QmpTimestamp {
  const us = Math.round(performance.timeOrigin * 1000 + performance.now() * 1000);
  return { seconds: Math.floor(us / 1e6), microseconds: us % 1e6 };
}

/** The longest path a unix socket address holds (sun_path is 108 bytes with its NUL). */
const SUN_PATH_MAX = 107;

/** Connects to the socket at `path`; one deeper than a socket address holds is reached through an fd of
 *  its directory (/proc/self/fd/N/name), so a long data dir does not make monitors unreachable. */
async function openSocket(path: string, signal: AbortSignal): Promise<Socket> {
  if (Buffer.byteLength(path) <= SUN_PATH_MAX) return connectTo(path, signal);
  const dir = await open(dirname(path), 'r');
  try {
    return await connectTo(`/proc/self/fd/${dir.fd}/${basename(path)}`, signal);
  } finally {
    await dir.close();
  }
}

function connectTo(path: string, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    const onAbort = () => {
      socket.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(err);
    });
  });
}

/** Splits the socket's bytes into JSON messages; before a client owns it, messages queue. */
interface LineReader {
  onMessage?: (message: Message) => void;
  queue: Message[];
  flush(): void;
}

function lineReader(socket: Socket): LineReader {
  let buffer = '';
  const reader: LineReader = {
    queue: [],
    flush() {
      while (reader.onMessage && reader.queue.length) reader.onMessage(reader.queue.shift() as Message);
    },
  };
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (!line) continue;
      try {
        reader.queue.push(JSON.parse(line) as Message);
      } catch {
        // Not JSON: QMP never sends that; skip it rather than kill the connection.
      }
    }
    reader.flush();
  });
  return reader;
}

/** The greeting: the first message on a fresh connection. */
function firstMessage(socket: Socket, lines: LineReader, signal: AbortSignal): Promise<Message | undefined> {
  return new Promise((resolve, reject) => {
    const finish = () => {
      signal.removeEventListener('abort', onAbort);
      socket.off('close', onClose);
      lines.onMessage = undefined;
    };
    const onAbort = () => {
      finish();
      reject(signal.reason);
    };
    const onClose = () => {
      finish();
      reject(new Error('the socket closed before QEMU greeted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('close', onClose);
    lines.onMessage = (message) => {
      finish();
      resolve(message);
    };
    lines.flush();
  });
}
