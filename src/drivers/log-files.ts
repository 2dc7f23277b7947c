// Streaming a domain's log files (stdout/stderr of a process, a guest's serial console): the last N lines,
// then, when following, new output as it is appended (tail -f semantics, polling the file size) until the
// caller's signal aborts. A file that shrinks (rotated or truncated) is read again from its start.

import { open, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LogChunk } from './driver.ts';

export interface LogFile {
  stream: LogChunk['stream'];
  path: string;
}

const READ_SIZE = 64 * 1024;
const DEFAULT_POLL_MS = 150;

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** The offset where the last `lines` lines of the file start. */
async function tailOffset(path: string, lines: number): Promise<number> {
  const size = await sizeOf(path);
  if (lines <= 0) return size;
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return 0;
  try {
    let end = size;
    let newlines = 0;
    while (end > 0) {
      const start = Math.max(0, end - READ_SIZE);
      const buf = Buffer.alloc(end - start);
      await handle.read(buf, 0, buf.length, start);
      for (let i = buf.length - 1; i >= 0; i--) {
        // A final newline ends the last line; it does not start a new one.
        if (buf[i] === 0x0a && start + i !== size - 1 && ++newlines === lines) return start + i + 1;
      }
      end = start;
    }
    return 0;
  } finally {
    await handle.close();
  }
}

/** Reads `path` from `offset` to its current end; returns the chunks and the new offset. */
async function readFrom(path: string, offset: number): Promise<{ chunks: Buffer[]; offset: number }> {
  const size = await sizeOf(path);
  if (size < offset) offset = 0;
  if (size === offset) return { chunks: [], offset };
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return { chunks: [], offset };
  const chunks: Buffer[] = [];
  try {
    while (offset < size) {
      const buf = Buffer.alloc(Math.min(READ_SIZE, size - offset));
      const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      offset += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return { chunks, offset };
}

export async function* streamLogFiles(
  files: LogFile[],
  options: { follow?: boolean; tail?: number; signal?: AbortSignal; pollMs?: number } = {},
): AsyncGenerator<LogChunk> {
  const offsets = await Promise.all(
    files.map((f) => (options.tail !== undefined ? tailOffset(f.path, options.tail) : 0)),
  );
  for (;;) {
    for (const [i, file] of files.entries()) {
      const { chunks, offset } = await readFrom(file.path, offsets[i]);
      offsets[i] = offset;
      for (const data of chunks) yield { stream: file.stream, data };
    }
    if (!options.follow || options.signal?.aborted) return;
    try {
      await sleep(options.pollMs ?? DEFAULT_POLL_MS, undefined, { signal: options.signal });
    } catch {
      return;
    }
  }
}
