// Extracting directory-image tars a hostile peer or client made: every entry an image may not hold is
// refused (absolute paths, `..`, devices, fifos, hard links, a path twice, writing through a link), nothing
// is written outside the staging directory, and a pull of such a blob leaves nothing in the store. Links
// that leave the tree are refused after extraction. A tar that is not a tar is a clear error.

import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractTar } from '../../src/images/canonical-tar.ts';
import { ImageLinkEscapeError, ImageSourceError, UnsafeArchiveError } from '../../src/images/errors.ts';
import { ImageStore } from '../../src/images/image-store.ts';
import { encodeManifest, manifestDigest, manifestOfFile } from '../../src/images/manifest.ts';

type TarEntry = { name: string; type?: string; body?: string; linkname?: string; mode?: number };

async function tarOf(entries: TarEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise((r) => p.on('end', () => r(undefined)));
  for (const e of entries) {
    const header = {
      name: e.name,
      type: e.type ?? 'file',
      linkname: e.linkname,
      mode: e.mode ?? 0o644,
    } as never;
    if (e.body !== undefined) p.entry(header, e.body);
    else p.entry(header);
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

describe('extractTar of hostile archives', () => {
  let root: string;
  let outside: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'xenos-tar-'));
    outside = join(root, 'outside');
    await mkdir(outside);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const refusals: [string, TarEntry[], RegExp][] = [
    ['an absolute path', [{ name: `/tmp/xenos-abs-${process.pid}`, body: 'x' }], /an absolute path/],
    ['a .. component', [{ name: '../outside/pwned', body: 'x' }], /a "\.\." path component/],
    [
      'a .. inside the path',
      [
        { name: 'a/', type: 'directory' },
        { name: 'a/../../outside/pwned', body: 'x' },
      ],
      /"\.\."/,
    ],
    ['a character device', [{ name: 'null', type: 'character-device' }], /character-device/],
    ['a block device', [{ name: 'sda', type: 'block-device' }], /block-device/],
    ['a fifo', [{ name: 'pipe', type: 'fifo' }], /fifo/],
    [
      'a hard link',
      [
        { name: 'a', body: 'x' },
        { name: 'b', type: 'link', linkname: 'a' },
      ],
      /a hard link/,
    ],
    [
      'a hard link out of the tree',
      [{ name: 'shadow', type: 'link', linkname: '/etc/shadow' }],
      /a hard link/,
    ],
    ['a setuid file', [{ name: 'su', body: 'x', mode: 0o4755 }], /a setuid or setgid file/],
    ['a setgid file', [{ name: 'sg', body: 'x', mode: 0o2755 }], /a setuid or setgid file/],
    [
      'the same path twice',
      [
        { name: 'a', body: 'x' },
        { name: 'a', body: 'y' },
      ],
      /appears twice/,
    ],
    [
      'a file then a directory of the same name',
      [
        { name: 'a', body: 'x' },
        { name: 'a/', type: 'directory' },
      ],
      /appears twice/,
    ],
    [
      'a file written through a symbolic link',
      [
        { name: 'out', type: 'symlink', linkname: '' },
        { name: 'out/pwned', body: 'x' },
      ],
      /parent "out" is not a directory/,
    ],
    [
      'a file whose parent was never declared',
      [{ name: 'nowhere/file', body: 'x' }],
      /parent "nowhere" is not a directory/,
    ],
  ];

  it.each(refusals)('refuses %s and writes nothing outside', async (_what, entries, message) => {
    // The link of the "through a link" case points at the real directory outside.
    const fixed = entries.map((e) =>
      e.type === 'symlink' && e.linkname === '' ? { ...e, linkname: outside } : e,
    );
    const tarFile = join(root, 'evil.tar');
    await writeFile(tarFile, await tarOf(fixed));
    const dest = join(root, 'dest');
    const err = await extractTar(tarFile, dest, 'evil.tar').catch((e) => e);
    expect(err).toBeInstanceOf(UnsafeArchiveError);
    expect(err.message).toMatch(message);
    expect(await readdir(outside)).toEqual([]);
    await expect(access(`/tmp/xenos-abs-${process.pid}`)).rejects.toThrow();
  });

  it('extracts files, directories and links with their modes', async () => {
    const tarFile = join(root, 'ok.tar');
    await writeFile(
      tarFile,
      await tarOf([
        { name: 'bin/', type: 'directory', mode: 0o555 },
        { name: 'shared/', type: 'directory', mode: 0o2775 },
        { name: 'bin/run', body: '#!/bin/sh\n', mode: 0o755 },
        { name: 'link', type: 'symlink', linkname: 'bin/run' },
      ]),
    );
    const dest = join(root, 'dest');
    await extractTar(tarFile, dest, 'ok.tar');
    const { lstat, readlink, stat } = await import('node:fs/promises');
    expect((await stat(join(dest, 'bin'))).mode & 0o777).toBe(0o555);
    // setgid on a directory only makes new files take its group: kept.
    expect((await stat(join(dest, 'shared'))).mode & 0o7777).toBe(0o2775);
    expect((await stat(join(dest, 'bin', 'run'))).mode & 0o777).toBe(0o755);
    expect((await lstat(join(dest, 'link'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(dest, 'link'))).toBe('bin/run');
  });

  describe('through a pull into the store', () => {
    async function pullBlob(blob: Buffer, digest: string) {
      const store = new ImageStore({ cacheDir: join(root, 'store'), chunkSize: 1024 });
      const file = join(root, 'blob');
      await writeFile(file, blob);
      const m = encodeManifest(await manifestOfFile(file, digest, 'directory', { chunkSize: 1024 }));
      const pull = await store.beginPull(m, manifestDigest(m));
      for (const i of pull.missing()) await pull.writeChunk(i, blob.subarray(i * 1024, (i + 1) * 1024));
      const err = await pull.complete().catch((e) => e);
      return { err, store };
    }
    const someDigest = `sha256:${createHash('sha256').update('claimed').digest('hex')}`;

    it('refuses a link that leads out of the image and keeps nothing', async () => {
      const blob = await tarOf([{ name: 'etc', type: 'symlink', linkname: '../../../../etc' }]);
      const { err, store } = await pullBlob(blob, someDigest);
      expect(err).toBeInstanceOf(ImageLinkEscapeError);
      expect(await store.list()).toEqual([]);
    });

    it('refuses a device and keeps nothing', async () => {
      const blob = await tarOf([{ name: 'null', type: 'character-device' }]);
      const { err, store } = await pullBlob(blob, someDigest);
      expect(err).toBeInstanceOf(UnsafeArchiveError);
      expect(await store.list()).toEqual([]);
    });

    it('says a blob that is not a tar is not one', async () => {
      const { err, store } = await pullBlob(Buffer.alloc(3000, 7), someDigest);
      expect(err).toBeInstanceOf(ImageSourceError);
      expect(err.message).toMatch(/not a readable tar/);
      expect(await store.list()).toEqual([]);
    });
  });
});
