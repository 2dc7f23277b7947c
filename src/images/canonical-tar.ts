// The blob of a directory image: its canonical tar, packed and extracted with tar-stream (the tar library
// most Node tooling builds on), never by running tar. Canonical means the same tree gives the same bytes
// on every host: POSIX ustar with pax headers for long names, entries sorted by path (as UTF-8 bytes, the
// order of the directory digest), permission bits kept, owner 0:0 with no names, mtime 0; only regular
// files, directories and symbolic links (a hard link is stored as a second file, as the digest counts it).
//
// Extraction reads bytes a peer or an API client sent, so it trusts nothing: into a fresh directory, it
// writes only files, directories and symbolic links; it refuses absolute paths, empty, `.` and `..`
// components, hard links, devices, fifos and every other entry type, setuid and setgid files, a path
// given twice, and an entry whose parent is not a directory this same archive created (so no entry is
// ever written through a link). Files are opened with O_EXCL|O_NOFOLLOW. Modes are applied at the end (a read-only directory
// gets its children first). Links that lead out of the tree and the digest are checked by the caller
// (image-links.ts, digest.ts) on the result.

import { constants, createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readlink, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Header, extract as tarExtract, pack as tarPack } from 'tar-stream';
import { SET_ID_BITS } from './digest.ts';
import { ImageSourceError, SetIdFileError, UnsafeArchiveError } from './errors.ts';

const MAX_PATH = 4096;

interface Entry {
  /** '/'-separated, relative. */
  rel: string;
  abs: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  size: number;
}

/** Every entry below `dir`, sorted as the canonical tar lists them. */
async function entries(dir: string, signal?: AbortSignal): Promise<Entry[]> {
  const out: Entry[] = [];
  async function walk(rel: string): Promise<void> {
    for (const name of await readdir(join(dir, rel))) {
      signal?.throwIfAborted();
      const relPath = rel ? `${rel}/${name}` : name;
      const abs = join(dir, relPath);
      const st = await lstat(abs);
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        out.push({ rel: relPath, abs, type: 'directory', mode, size: 0 });
        await walk(relPath);
      } else if (st.isFile()) {
        if (mode & SET_ID_BITS) throw new SetIdFileError(dir, relPath);
        out.push({ rel: relPath, abs, type: 'file', mode, size: st.size });
      } else if (st.isSymbolicLink()) out.push({ rel: relPath, abs, type: 'symlink', mode: 0o777, size: 0 });
      else
        throw new ImageSourceError(
          dir,
          `${relPath} is a device, socket or fifo; images hold files, directories and links only`,
        );
    }
  }
  await walk('');
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.rel), Buffer.from(b.rel)));
}

/**
 * The canonical tar of `dir` as a stream. The tree must not change while it is read (the caller packs a
 * copy only it writes, or checks the digest of what arrives).
 */
export function packDirectory(dir: string, signal?: AbortSignal): Readable {
  const pack = tarPack();
  const fill = async () => {
    for (const e of await entries(dir, signal)) {
      signal?.throwIfAborted();
      const header: Partial<Header> & { name: string } = {
        name: e.type === 'directory' ? `${e.rel}/` : e.rel,
        type: e.type,
        mode: e.mode,
        size: e.size,
        mtime: new Date(0),
        uid: 0,
        gid: 0,
        uname: '',
        gname: '',
      };
      if (e.type === 'symlink') {
        header.linkname = await readlink(e.abs);
        pack.entry(header);
      } else if (e.type === 'directory') pack.entry(header);
      else {
        const sink = pack.entry(header);
        await pipeline(createReadStream(e.abs), sink, { signal });
      }
    }
    pack.finalize();
  };
  fill().catch((err) => pack.destroy(err));
  return Readable.from(pack);
}

/** Why `name` may not be a path in an image tar, or undefined when it may. */
function badPath(name: string): string | undefined {
  if (name.length === 0) return 'an empty path';
  if (name.length > MAX_PATH) return `a path longer than ${MAX_PATH} bytes`;
  if (name.includes('\0')) return 'a NUL byte in the path';
  if (name.startsWith('/')) return 'an absolute path';
  for (const c of name.split('/')) {
    if (c === '') return 'an empty path component';
    if (c === '.' || c === '..') return `a "${c}" path component`;
  }
  return undefined;
}

/**
 * Extracts the tar in `source` (a blob file) into `dest`, which must not exist yet. Throws
 * UnsafeArchiveError on the first entry an image may not hold; the caller removes `dest` then.
 */
export async function extractTar(
  source: string,
  dest: string,
  what: string,
  signal?: AbortSignal,
): Promise<void> {
  await mkdir(dest, { mode: 0o700 });
  const extract = tarExtract();
  // Fed by hand, as pipe() would (tar-stream's streams are streamx streams, not typed as Node's): pause the
  // file while the extractor is full; a read error ends the extraction with it.
  const input = createReadStream(source, { signal });
  input.on('data', (chunk) => {
    if (!extract.write(chunk)) input.pause();
  });
  extract.on('drain', () => input.resume());
  input.on('end', () => extract.end(null));
  input.on('error', (err) => extract.destroy(err));
  // Kinds of the paths created so far: a parent must be a directory made by this archive.
  const made = new Map<string, 'file' | 'directory' | 'symlink'>();
  const modes: { path: string; mode: number; depth: number }[] = [];
  try {
    for await (const entry of extract) {
      signal?.throwIfAborted();
      const h = entry.header;
      const name = h.type === 'directory' ? h.name.replace(/\/+$/, '') : h.name;
      const refuse = (why: string): never => {
        throw new UnsafeArchiveError(what, h.name, why);
      };
      const why = badPath(name);
      if (why) refuse(why);
      if (made.has(name)) refuse('the path appears twice');
      const parts = name.split('/');
      const parent = parts.slice(0, -1).join('/');
      if (parent && made.get(parent) !== 'directory')
        refuse(`its parent ${JSON.stringify(parent)} is not a directory earlier in the archive`);
      const path = join(dest, ...parts);
      const mode = (h.mode ?? 0o644) & 0o7777;
      if (h.type === 'directory') {
        await mkdir(path, { mode: 0o700 });
        made.set(name, 'directory');
        modes.push({ path, mode, depth: parts.length });
        entry.resume();
      } else if (h.type === 'symlink') {
        if (!h.linkname) refuse('a symbolic link without a target');
        await symlink(h.linkname!, path);
        made.set(name, 'symlink');
        entry.resume();
      } else if (h.type === 'file') {
        if (mode & SET_ID_BITS) refuse('a setuid or setgid file (its owner would be root on this host)');
        const fh = await open(
          path,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
          0o600,
        );
        try {
          // Written by hand: node's pipeline waits for a close tar-stream's entries do not emit in time.
          for await (const piece of entry as AsyncIterable<Buffer>) {
            signal?.throwIfAborted();
            await fh.write(piece);
          }
          await fh.chmod(mode);
        } finally {
          await fh.close();
        }
        made.set(name, 'file');
      } else {
        refuse(
          h.type === 'link'
            ? 'a hard link'
            : `an entry of type ${JSON.stringify(h.type)} (devices, fifos and the like are not image content)`,
        );
      }
    }
  } catch (err) {
    input.destroy();
    extract.destroy();
    throw err;
  }
  // Deepest first, so a read-only directory is sealed after its children are in.
  for (const m of modes.sort((a, b) => b.depth - a.depth)) await chmod(m.path, m.mode);
  await chmod(dest, 0o755);
}
