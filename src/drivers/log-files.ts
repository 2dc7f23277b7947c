// Streaming a domain's log files (stdout/stderr of a process, a guest's serial console): the last N lines,
// then, when following, new output as it is appended (tail -F semantics, polling) until the caller's signal
// aborts. Logs rotate by size (`log` → `log.1` → … → `log.KEEP`, see process/supervisor.ts): the last N
// lines may start in a rotated file, and a follower keeps the file it was reading open, finishes it when a
// new file appears under the name, then goes on with the new one — no byte is skipped or read twice. A file
// that shrinks in place (truncated) is read again from its start.

import { type FileHandle, open, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LogChunk } from './driver.ts';

export interface LogFile {
  stream: LogChunk['stream'];
  path: string;
  /** How many rotated files (`path.1` … `path.N`, newest first) may exist beside it. */
  rotated?: number;
}

const READ_SIZE = 64 * 1024;
const DEFAULT_POLL_MS = 150;

/** `path`, then `path.1` … `path.N`: newest first. */
function generations(file: LogFile): string[] {
  const out = [file.path];
  for (let i = 1; i <= (file.rotated ?? 0); i++) out.push(`${file.path}.${i}`);
  return out;
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

/** Where the last `lines` lines start: the index in generations() and the offset in that file. */
async function tailStart(paths: string[], lines: number): Promise<{ index: number; offset: number }> {
  let newlines = 0;
  let oldest = 0;
  for (const [index, path] of paths.entries()) {
    const size = await sizeOf(path);
    if (size === undefined) break;
    oldest = index;
    if (lines <= 0) return { index: 0, offset: size };
    const handle = await open(path, 'r').catch(() => undefined);
    if (!handle) break;
    try {
      let end = size;
      while (end > 0) {
        const start = Math.max(0, end - READ_SIZE);
        const buf = Buffer.alloc(end - start);
        await handle.read(buf, 0, buf.length, start);
        for (let i = buf.length - 1; i >= 0; i--) {
          // The newest file's final newline ends its last line; it does not start a new one.
          if (buf[i] !== 0x0a || (index === 0 && start + i === size - 1)) continue;
          if (++newlines === lines) return { index, offset: start + i + 1 };
        }
        end = start;
      }
    } finally {
      await handle.close();
    }
  }
  return { index: oldest, offset: 0 };
}

/** Reads `handle` from `offset` to its current end. */
async function readAll(handle: FileHandle, offset: number): Promise<{ chunks: Buffer[]; offset: number }> {
  const chunks: Buffer[] = [];
  for (;;) {
    const buf = Buffer.alloc(READ_SIZE);
    const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
    if (bytesRead === 0) return { chunks, offset };
    chunks.push(buf.subarray(0, bytesRead));
    offset += bytesRead;
  }
}

/** One stream being read: the file open under its name (or none yet) and how far it was read. */
class Reader {
  private handle?: FileHandle;
  private ino?: number;
  private offset = 0;
  private readonly file: LogFile;

  constructor(file: LogFile) {
    this.file = file;
  }

  /** Starts at `offset` of the file now under the name. */
  async begin(offset: number): Promise<void> {
    await this.reopen();
    this.offset = offset;
  }

  private async reopen(): Promise<void> {
    await this.handle?.close();
    this.handle = await open(this.file.path, 'r').catch(() => undefined);
    this.ino = this.handle ? (await this.handle.stat()).ino : undefined;
    this.offset = 0;
  }

  /** New bytes: the rest of the file held; if other files took the name since, the rotated ones newer
   *  than it (several rotations may fall between two polls), then the one under the name now. */
  async poll(): Promise<Buffer[]> {
    const out: Buffer[] = [];
    // Look at the name first: a file is complete once another has its name (the pump renames it only
    // after its last write), so reading the held one to its end afterwards loses nothing.
    const now = await stat(this.file.path).catch(() => undefined);
    if (this.handle) {
      const size = (await this.handle.stat()).size;
      if (size < this.offset) this.offset = 0; // truncated in place
      const read = await readAll(this.handle, this.offset);
      out.push(...read.chunks);
      this.offset = read.offset;
    }
    if (!now || now.ino === this.ino) return out;
    // Open every generation, newest first, and know each by its inode: a rotation between two opens
    // shifts files towards the old end, so it can show one file twice (dropped here) but never hide one
    // that still exists. Names are not looked at again after this, so what is read is what was opened.
    const gens = await openGenerations(generations(this.file));
    const heldAt = gens.findIndex((g) => g.ino === this.ino);
    if (heldAt === 0) {
      for (const g of gens) await g.handle.close();
      return out; // the name came back to the file held: nothing newer to read
    }
    const newer = heldAt < 0 ? gens : gens.slice(0, heldAt);
    for (const g of gens.slice(newer.length)) await g.handle.close();
    try {
      for (const g of newer.slice(1).reverse()) out.push(...(await readAll(g.handle, 0)).chunks);
    } finally {
      for (const g of newer.slice(1)) await g.handle.close();
    }
    await this.handle?.close();
    this.handle = newer[0]?.handle;
    this.ino = newer[0]?.ino;
    this.offset = 0;
    if (this.handle) {
      const read = await readAll(this.handle, 0);
      out.push(...read.chunks);
      this.offset = read.offset;
    }
    return out;
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }
}

/** Each of `paths` that exists, opened, with its inode; an inode already seen is closed and left out. */
async function openGenerations(paths: string[]): Promise<{ handle: FileHandle; ino: number }[]> {
  const out: { handle: FileHandle; ino: number }[] = [];
  for (const path of paths) {
    const handle = await open(path, 'r').catch(() => undefined);
    if (!handle) continue;
    const { ino } = await handle.stat();
    if (out.some((g) => g.ino === ino)) await handle.close();
    else out.push({ handle, ino });
  }
  return out;
}

async function readWhole(path: string, offset: number): Promise<Buffer[]> {
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return [];
  try {
    return (await readAll(handle, offset)).chunks;
  } finally {
    await handle.close();
  }
}

export async function* streamLogFiles(
  files: LogFile[],
  options: { follow?: boolean; tail?: number; signal?: AbortSignal; pollMs?: number } = {},
): AsyncGenerator<LogChunk> {
  const readers: Reader[] = [];
  try {
    for (const file of files) {
      const paths = generations(file);
      const existing: string[] = [];
      for (const p of paths) if ((await sizeOf(p)) !== undefined) existing.push(p);
      const start =
        options.tail !== undefined
          ? await tailStart(paths, options.tail)
          : { index: Math.max(0, existing.length - 1), offset: 0 };
      // Rotated files first, oldest to newest, from where the tail starts.
      for (let i = start.index; i >= 1; i--) {
        for (const data of await readWhole(paths[i], i === start.index ? start.offset : 0))
          yield { stream: file.stream, data };
      }
      const reader = new Reader(file);
      await reader.begin(start.index === 0 ? start.offset : 0);
      readers.push(reader);
    }
    for (;;) {
      for (const [i, reader] of readers.entries()) {
        for (const data of await reader.poll()) yield { stream: files[i].stream, data };
      }
      if (!options.follow || options.signal?.aborted) return;
      try {
        await sleep(options.pollMs ?? DEFAULT_POLL_MS, undefined, { signal: options.signal });
      } catch {
        return;
      }
    }
  } finally {
    for (const r of readers) await r.close();
  }
}
