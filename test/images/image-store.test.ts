// The image store on real files: imports become blob + manifest + have + image + meta.json; a second store
// pulls an image chunk by chunk from the first (out of order) and ends with the same digest; a chunk with
// a wrong hash or length is refused and nothing is written; a pull resumes from its bitmap after the store
// is reopened; a damaged blob is not served; entries made before blobs existed get one on first use.

import { createHash } from 'node:crypto';
import {
  chmod,
  link,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { directoryDigest } from '../../src/images/digest.ts';
import {
  ChunkHashMismatchError,
  ImageDigestMismatchError,
  InvalidManifestError,
  ManifestDigestMismatchError,
  SetIdFileError,
} from '../../src/images/errors.ts';
import { ImageStore } from '../../src/images/image-store.ts';
import { importInto } from '../../src/images/import-image.ts';
import { chunkSizeFor, encodeManifest, manifestDigest, parseManifest } from '../../src/images/manifest.ts';

const sha = (data: string | Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const CHUNK = 1024;

describe('ImageStore', () => {
  let root: string;
  let a: ImageStore;
  let b: ImageStore;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'xenos-store-'));
    a = new ImageStore({ cacheDir: join(root, 'a'), chunkSize: CHUNK });
    b = new ImageStore({ cacheDir: join(root, 'b'), chunkSize: CHUNK, syncEvery: 2 });
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Bytes that differ in every chunk. */
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + (i >> 10)) & 255));

  async function makeTree(dir: string): Promise<void> {
    await mkdir(join(dir, 'bin'), { recursive: true });
    await writeFile(join(dir, 'bin', 'serve'), bytes(3000));
    await chmod(join(dir, 'bin', 'serve'), 0o755);
    await writeFile(join(dir, 'README'), 'hello\n');
    await symlink('bin/serve', join(dir, 'run'));
    await link(join(dir, 'README'), join(dir, 'README.copy'));
  }

  async function copyAll(from: ImageStore, to: ImageStore, digest: string, order?: number[]) {
    const m = (await from.manifest(digest))!;
    const pull = await to.beginPull(m, manifestDigest(m));
    for (const i of order ?? pull.missing()) await pull.writeChunk(i, (await from.readChunk(digest, i))!);
    return pull;
  }

  it('imports a file as blob, manifest, bitmap, a read-only hard link and meta.json', async () => {
    const src = join(root, 'disk.raw');
    await writeFile(src, bytes(5000));
    const img = await importInto(a, { path: src }, undefined);
    expect(img.digest).toBe(sha(bytes(5000)));
    const dir = join(root, 'a', 'sha256', img.digest.slice(7));
    expect((await readdir(dir)).sort()).toEqual(['blob', 'have', 'image', 'manifest.json', 'meta.json']);
    const [blob, image] = [await stat(join(dir, 'blob')), await stat(img.path)];
    expect(image.ino).toBe(blob.ino);
    expect(image.mode & 0o777).toBe(0o444);
    const m = parseManifest(await readFile(join(dir, 'manifest.json')));
    expect(m).toMatchObject({ digest: img.digest, kind: 'file', size: 5000, chunkSize: CHUNK });
    expect(m.chunks).toEqual(
      [0, 1, 2, 3, 4].map((i) => sha(bytes(5000).subarray(i * CHUNK, (i + 1) * CHUNK)).slice(7)),
    );
    const [listed] = await a.list();
    expect(listed).toMatchObject({
      digest: img.digest,
      complete: true,
      chunks: 5,
      haveChunks: 5,
      blobSize: 5000,
    });
    expect(listed.manifestDigest).toBe(manifestDigest(encodeManifest(m)));
    expect(await a.findByBlob(img.digest)).toEqual(img);
  });

  it('pulls a file image chunk by chunk, out of order, into another store', async () => {
    const src = join(root, 'disk.raw');
    await writeFile(src, bytes(5000));
    const img = await importInto(a, { path: src }, undefined);
    const pull = await copyAll(a, b, img.digest, [4, 0, 2, 3, 1]);
    const got = await pull.complete();
    expect(got).toMatchObject({ digest: img.digest, kind: 'file', size: 5000 });
    expect(await readFile(got.path)).toEqual(bytes(5000));
    expect(await b.get(img.digest)).toEqual(got);
    expect(await b.manifest(img.digest)).toEqual(await a.manifest(img.digest));
  });

  it('pulls a directory image: the tar travels, the tree is rebuilt with the same digest', async () => {
    const src = join(root, 'tree');
    await makeTree(src);
    const img = await importInto(a, { path: src }, undefined);
    expect(img.digest).toBe((await directoryDigest(src)).digest);
    const got = await (await copyAll(a, b, img.digest)).complete();
    expect(got.digest).toBe(img.digest);
    expect((await directoryDigest(got.path)).digest).toBe(img.digest);
    expect((await stat(join(got.path, 'bin', 'serve'))).mode & 0o777).toBe(0o755);
  });

  it('refuses a directory holding a setuid or setgid file, keeping nothing', async () => {
    const src = join(root, 'suid');
    await makeTree(src);
    await chmod(join(src, 'bin', 'serve'), 0o4755);
    await expect(importInto(a, { path: src }, undefined)).rejects.toThrow(SetIdFileError);
    await chmod(join(src, 'bin', 'serve'), 0o2755);
    await expect(importInto(a, { path: src }, undefined)).rejects.toThrow(/bin\/serve is setuid or setgid/);
    expect(await a.list()).toEqual([]);
    expect(await readdir(join(root, 'a', 'tmp'))).toEqual([]);
  });

  it('packs the same tree into the same blob whatever its times and owners', async () => {
    const one = join(root, 'one');
    const two = join(root, 'two');
    await makeTree(one);
    await new Promise((r) => setTimeout(r, 20)); // a different mtime for every file of the second tree
    await makeTree(two);
    const x = await importInto(a, { path: one }, undefined);
    const other = new ImageStore({ cacheDir: join(root, 'c'), chunkSize: CHUNK });
    const y = await importInto(other, { path: two }, undefined);
    expect(y.digest).toBe(x.digest);
    expect(await other.manifest(y.digest)).toEqual(await a.manifest(x.digest));
  });

  it('refuses a chunk whose hash or length is wrong and writes nothing', async () => {
    const src = join(root, 'disk.raw');
    await writeFile(src, bytes(5000));
    const img = await importInto(a, { path: src }, undefined);
    const m = (await a.manifest(img.digest))!;
    const pull = await b.beginPull(m, manifestDigest(m));
    const good = (await a.readChunk(img.digest, 1))!;
    const bad = Buffer.from(good);
    bad[10] ^= 1;
    await expect(pull.writeChunk(1, bad)).rejects.toThrow(ChunkHashMismatchError);
    await expect(pull.writeChunk(1, good.subarray(0, 100))).rejects.toThrow(
      /100 bytes where the chunk has 1024/,
    );
    expect(pull.has(1)).toBe(false);
    await pull.close();
    const blob = await readFile(join(root, 'b', 'sha256', img.digest.slice(7), 'blob'));
    expect(blob.subarray(CHUNK, 2 * CHUNK).every((x) => x === 0)).toBe(true);
    expect(await b.readChunk(img.digest, 1)).toBeUndefined();
  });

  it('resumes a pull from its bitmap after the store is reopened', async () => {
    const src = join(root, 'disk.raw');
    await writeFile(src, bytes(9000)); // 9 chunks
    const img = await importInto(a, { path: src }, undefined);
    const m = (await a.manifest(img.digest))!;
    const first = await b.beginPull(m, manifestDigest(m));
    for (const i of [0, 1, 2, 5]) await first.writeChunk(i, (await a.readChunk(img.digest, i))!);
    // Partial holders serve what they hold, and say what that is.
    expect(await b.readChunk(img.digest, 5)).toEqual(await a.readChunk(img.digest, 5));
    expect(await b.readChunk(img.digest, 6)).toBeUndefined();
    expect((await b.list())[0]).toMatchObject({ complete: false, chunks: 9, haveChunks: 4 });
    await first.close();

    const reopened = new ImageStore({ cacheDir: join(root, 'b'), chunkSize: CHUNK });
    expect(await reopened.get(img.digest)).toBeUndefined();
    expect(Array.from((await reopened.haveBitmap(img.digest)) ?? [])).toEqual([0b00100111, 0]);
    const again = await reopened.beginPull(m, manifestDigest(m));
    expect(again.missing()).toEqual([3, 4, 6, 7, 8]);
    for (const i of again.missing()) await again.writeChunk(i, (await a.readChunk(img.digest, i))!);
    expect((await again.complete()).digest).toBe(img.digest);
  });

  it('refuses a manifest that is not the one published, or not canonical', async () => {
    const src = join(root, 'disk.raw');
    await writeFile(src, bytes(3000));
    const img = await importInto(a, { path: src }, undefined);
    const m = (await a.manifest(img.digest))!;
    await expect(b.beginPull(m, sha('something else'))).rejects.toThrow(ManifestDigestMismatchError);
    const spaced = Buffer.from(JSON.stringify(JSON.parse(m.toString()), null, 1));
    await expect(b.beginPull(spaced, manifestDigest(spaced))).rejects.toThrow(InvalidManifestError);
    const parsed = parseManifest(m);
    const short = encodeManifest({ ...parsed, chunks: parsed.chunks.slice(1) });
    await expect(b.beginPull(short, manifestDigest(short))).rejects.toThrow(/2 chunks where size 3000/);
    expect(await b.list()).toEqual([]);
  });

  it('discards a pull whose chunks match a manifest that lies about the image digest', async () => {
    const src = join(root, 'disk.raw');
    await writeFile(src, bytes(3000));
    const img = await importInto(a, { path: src }, undefined);
    const lie = encodeManifest({ ...parseManifest((await a.manifest(img.digest))!), digest: sha('other') });
    const pull = await b.beginPull(lie, manifestDigest(lie));
    for (const i of pull.missing()) await pull.writeChunk(i, (await a.readChunk(img.digest, i))!);
    await expect(pull.complete()).rejects.toThrow(ImageDigestMismatchError);
    expect(await b.list()).toEqual([]);
  });

  it('does not serve a chunk damaged on its disk (unless asked not to check)', async () => {
    const src = join(root, 'disk.raw');
    await writeFile(src, bytes(3000));
    const img = await importInto(a, { path: src }, undefined);
    const blob = join(root, 'a', 'sha256', img.digest.slice(7), 'blob');
    await chmod(blob, 0o644);
    const data = await readFile(blob);
    data[CHUNK + 3] ^= 0xff;
    await writeFile(blob, data);
    expect(await a.readChunk(img.digest, 0)).toBeDefined();
    expect(await a.readChunk(img.digest, 1)).toBeUndefined();
    expect((await a.readChunk(img.digest, 1, { verify: false }))?.[3]).toBe(data[CHUNK + 3]);
    expect(await a.readChunk(img.digest, 7)).toBeUndefined();
  });

  it('gives an entry made before blobs existed its blob and manifest on first use', async () => {
    const tree = join(root, 'tree');
    await makeTree(tree);
    const { digest, size } = await directoryDigest(tree);
    const dir = join(root, 'a', 'sha256', digest.slice(7));
    await mkdir(dir, { recursive: true });
    await import('node:child_process').then(({ execFileSync }) =>
      execFileSync('cp', ['-a', tree, join(dir, 'image')]),
    );
    await writeFile(
      join(dir, 'meta.json'),
      JSON.stringify({ digest, kind: 'directory', size, source: tree }),
    );
    const m = await a.manifest(digest);
    expect(parseManifest(m!)).toMatchObject({ digest, kind: 'directory' });
    const got = await (await copyAll(a, b, digest)).complete();
    expect(got.digest).toBe(digest);
  });

  it('removes an image, and a pull in progress', async () => {
    const src = join(root, 'disk.raw');
    await writeFile(src, bytes(3000));
    const img = await importInto(a, { path: src }, undefined);
    const m = (await a.manifest(img.digest))!;
    const pull = await b.beginPull(m, manifestDigest(m));
    await pull.writeChunk(0, (await a.readChunk(img.digest, 0))!);
    await b.remove(img.digest);
    expect(pull.closed).toBe(true);
    await a.remove(img.digest);
    expect(await a.get(img.digest)).toBeUndefined();
    expect(await a.list()).toEqual([]);
    expect(await b.list()).toEqual([]);
    expect(await readdir(join(root, 'a', 'tmp'))).toEqual([]);
  });
});

describe('chunkSizeFor', () => {
  it('cuts images up to 2 GiB in 1 MiB chunks, larger ones in up to 4 MiB, about 2,048 chunks or fewer', () => {
    const MiB = 1024 * 1024;
    expect(chunkSizeFor(0)).toBe(MiB);
    expect(chunkSizeFor(64 * MiB)).toBe(MiB);
    expect(chunkSizeFor(2048 * MiB)).toBe(MiB);
    expect(chunkSizeFor(2048 * MiB + 1)).toBe(2 * MiB);
    expect(chunkSizeFor(11e9)).toBe(4 * MiB);
    expect(chunkSizeFor(1e12)).toBe(4 * MiB);
  });

  it('is what a store made without a fixed chunk size cuts by', async () => {
    const root = await mkdtemp(join(tmpdir(), 'xenos-store-'));
    try {
      const store = new ImageStore({ cacheDir: join(root, 'sized') });
      const file = join(root, 'three-mib.raw');
      await writeFile(file, Buffer.alloc(3 * 1024 * 1024 + 5, 7));
      const img = await importInto(store, { path: file }, undefined);
      const m = parseManifest((await store.manifest(img.digest))!);
      expect(m.chunkSize).toBe(1024 * 1024);
      expect(m.chunks).toHaveLength(4);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
