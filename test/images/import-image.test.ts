// Importing template images into the content-addressed cache: files and directories from local paths,
// downloads from a local HTTP server on 127.0.0.1, digest checks, idempotence (no second download or copy)
// and the canonical directory digest (order-, time- and owner-independent; mode- and content-dependent).

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { directoryDigest, directoryListing } from '../../src/images/digest.ts';
import { ImageDigestMismatchError, ImageSourceError, InvalidDigestError } from '../../src/images/errors.ts';
import { importImage } from '../../src/images/import-image.ts';

const sha = (data: string | Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
/** The test servers listen on loopback, which a host refuses unless told otherwise. */
const loopbackOk = { allowPrivateAddresses: true };

describe('importImage', () => {
  let root: string;
  let cacheDir: string;
  let server: Server | undefined;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'xenos-images-'));
    cacheDir = join(root, 'cache');
  });
  afterEach(async () => {
    if (server) {
      server.closeAllConnections();
      await new Promise((r) => server!.close(r));
      server = undefined;
    }
    await rm(root, { recursive: true, force: true });
  });

  async function serve(files: Record<string, Buffer>): Promise<{ base: string; requests: string[] }> {
    const requests: string[] = [];
    server = createServer((req, res) => {
      requests.push(req.url!);
      const body = files[req.url!];
      if (!body) res.writeHead(404).end('not here');
      else res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { base: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests };
  }

  it('stores a local file under its sha256 and does no work the second time', async () => {
    const src = join(root, 'disk.raw');
    await writeFile(src, 'raw disk bytes');
    const first = await importImage({ path: src }, undefined, { cacheDir });
    expect(first).toEqual({
      digest: sha('raw disk bytes'),
      path: join(cacheDir, 'sha256', sha('raw disk bytes').slice(7), 'image'),
      size: 14,
      kind: 'file',
    });
    expect(await readFile(first.path, 'utf8')).toBe('raw disk bytes');
    const before = (await stat(first.path)).mtimeMs;
    await rm(src);
    // Known digest: answered from the cache although the source is gone.
    expect(await importImage({ path: src }, first.digest, { cacheDir })).toEqual(first);
    expect((await stat(first.path)).mtimeMs).toBe(before);
    expect(await readdir(join(cacheDir, 'tmp'))).toEqual([]);
  });

  it('downloads over http, hashing while streaming, and never downloads a cached digest again', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    const { base, requests } = await serve({ '/img.qcow2': body });
    const got = await importImage({ url: `${base}/img.qcow2` }, sha(body), { cacheDir, url: loopbackOk });
    expect(got).toMatchObject({ digest: sha(body), size: body.length, kind: 'file' });
    expect((await readFile(got.path)).equals(body)).toBe(true);
    expect(await importImage({ url: `${base}/img.qcow2` }, sha(body), { cacheDir, url: loopbackOk })).toEqual(
      got,
    );
    expect(requests).toEqual(['/img.qcow2']);
  });

  it('refuses a download whose digest does not match, naming both, and caches nothing', async () => {
    const { base } = await serve({ '/img': Buffer.from('evil') });
    const wrong = sha('good');
    const pending = importImage({ url: `${base}/img` }, wrong, { cacheDir, url: loopbackOk });
    await expect(pending).rejects.toThrow(ImageDigestMismatchError);
    await expect(importImage({ url: `${base}/img` }, wrong, { cacheDir, url: loopbackOk })).rejects.toThrow(
      `image ${base}/img: expected digest ${wrong} but the content hashes to ${sha('evil')}`,
    );
    expect(await readdir(join(cacheDir, 'sha256')).catch(() => [])).toEqual([]);
    expect(await readdir(join(cacheDir, 'tmp'))).toEqual([]);
  });

  it('reports HTTP errors, missing paths and malformed digests clearly', async () => {
    const { base } = await serve({});
    await expect(
      importImage({ url: `${base}/missing` }, undefined, { cacheDir, url: loopbackOk }),
    ).rejects.toThrow(`image ${base}/missing: the server answered 404 Not Found`);
    await expect(importImage({ path: join(root, 'nope') }, undefined, { cacheDir })).rejects.toThrow(
      ImageSourceError,
    );
    await expect(importImage({ path: join(root, 'nope') }, 'md5:abc', { cacheDir })).rejects.toThrow(
      InvalidDigestError,
    );
  });

  it('stores a directory as a directory, with its canonical digest', async () => {
    const src = join(root, 'app');
    await mkdir(join(src, 'bin'), { recursive: true });
    await writeFile(join(src, 'bin', 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    await writeFile(join(src, 'README'), 'read me');
    await symlink('bin/run.sh', join(src, 'start'));
    const got = await importImage({ path: src }, undefined, { cacheDir });
    expect(got.kind).toBe('directory');
    expect(got.size).toBe(18 + 7);
    expect(got.digest).toBe((await directoryDigest(src)).digest);
    expect((await stat(join(got.path, 'bin', 'run.sh'))).mode & 0o777).toBe(0o755);
    expect(await importImage({ path: src }, got.digest, { cacheDir })).toEqual(got);
  });
});

describe('directory digest', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'xenos-digest-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  async function tree(name: string, order: string[]): Promise<string> {
    const dir = join(root, name);
    await mkdir(join(dir, 'sub'), { recursive: true });
    const files: Record<string, string> = { a: 'A', 'sub/b': 'B', z: 'Z' };
    for (const f of order) await writeFile(join(dir, f), files[f], { mode: 0o644 });
    await chmod(join(dir, 'sub'), 0o755);
    return dir;
  }

  it('has the documented canonical listing', async () => {
    const dir = await tree('one', ['a', 'sub/b', 'z']);
    const { listing } = await directoryListing(dir);
    expect(listing).toBe(
      [
        `F 0644 ${sha('A').slice(7)} "a"`,
        `D 0755 "sub"`,
        `F 0644 ${sha('B').slice(7)} "sub/b"`,
        `F 0644 ${sha('Z').slice(7)} "z"`,
        '',
      ].join('\n'),
    );
  });

  it('ignores creation order and times, but not modes or content', async () => {
    const one = await tree('one', ['a', 'sub/b', 'z']);
    const two = await tree('two', ['z', 'sub/b', 'a']);
    await utimes(join(two, 'a'), 1, 1);
    const d1 = (await directoryDigest(one)).digest;
    expect((await directoryDigest(two)).digest).toBe(d1);
    await chmod(join(two, 'a'), 0o600);
    const d2 = (await directoryDigest(two)).digest;
    expect(d2).not.toBe(d1);
    await chmod(join(two, 'a'), 0o644);
    await writeFile(join(two, 'sub', 'b'), 'b');
    expect((await directoryDigest(two)).digest).not.toBe(d1);
  });
});
