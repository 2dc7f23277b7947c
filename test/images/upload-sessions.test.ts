// Resumable uploads on real files: a piece cut short by a broken connection keeps what arrived and the
// next piece goes on from there; a piece at the wrong offset or past the announced size is refused; two
// writers of one upload at once are refused; a begin with another size starts over; a finished directory
// upload is extracted into the store with its image digest; a blob already held needs no upload.

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { packDirectory } from '../../src/images/canonical-tar.ts';
import { directoryDigest } from '../../src/images/digest.ts';
import {
  ImageTooLargeError,
  UploadBusyError,
  UploadNotFoundError,
  UploadOffsetError,
} from '../../src/images/errors.ts';
import { ImageStore } from '../../src/images/image-store.ts';
import { UploadSessions } from '../../src/images/upload-sessions.ts';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('UploadSessions', () => {
  let root: string;
  let images: ImageStore;
  let uploads: UploadSessions;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'xenos-uploads-'));
    images = new ImageStore({ cacheDir: join(root, 'images'), chunkSize: 1024 });
    uploads = new UploadSessions({ store: images }, { maxBytes: 1 << 20 });
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('keeps what arrived of a piece cut short, and goes on from there', async () => {
    const body = Buffer.alloc(4000, 9);
    const digest = sha(body);
    expect(await uploads.begin({ digest, size: body.length, kind: 'file' })).toEqual({
      upload: { digest, size: 4000, kind: 'file', offset: 0 },
    });
    const broken = Readable.from(
      (async function* () {
        yield body.subarray(0, 1500);
        throw new Error('connection reset');
      })(),
    );
    await expect(uploads.append(digest, 0, broken)).rejects.toThrow('connection reset');
    expect((await uploads.state(digest))?.offset).toBe(1500);
    await expect(uploads.append(digest, 0, Readable.from([body]))).rejects.toThrow(UploadOffsetError);
    // Asking again (a rerun of the push) finds the same upload and its offset.
    expect(await uploads.begin({ digest, size: body.length, kind: 'file' })).toMatchObject({
      upload: { offset: 1500 },
    });
    await uploads.append(digest, 1500, Readable.from([body.subarray(1500)]));
    const img = await uploads.finish(digest);
    expect(img).toMatchObject({ digest, kind: 'file', size: 4000 });
    expect(await uploads.state(digest)).toBeUndefined();
    expect(await uploads.begin({ digest, size: body.length, kind: 'file' })).toEqual({ held: img });
  });

  it('refuses bytes past the announced size, a second writer, a finish before the end, and a too-large begin', async () => {
    const body = Buffer.alloc(100, 1);
    const digest = sha(body);
    await uploads.begin({ digest, size: 100, kind: 'file' });
    await expect(uploads.append(digest, 0, Readable.from([Buffer.alloc(101)]))).rejects.toThrow(
      ImageTooLargeError,
    );
    let release!: () => void;
    const slow = Readable.from(
      (async function* () {
        yield body.subarray(0, 10);
        await new Promise<void>((r) => {
          release = r;
        });
      })(),
    );
    const first = uploads.append(digest, 0, slow);
    await expect(uploads.append(digest, 0, Readable.from([body]))).rejects.toThrow(UploadBusyError);
    await expect.poll(() => release !== undefined).toBe(true);
    release();
    expect((await first).offset).toBe(10);
    await expect(uploads.finish(digest)).rejects.toThrow(/10 of 100 bytes have arrived; send from byte 10/);
    await expect(uploads.begin({ digest, size: 2 << 20, kind: 'file' })).rejects.toThrow(/--max-image-size/);
    await expect(uploads.append(sha(Buffer.from('none')), 0, Readable.from([body]))).rejects.toThrow(
      UploadNotFoundError,
    );
  });

  it('starts over when the same blob is announced with another size', async () => {
    const digest = sha(Buffer.from('x'));
    await uploads.begin({ digest, size: 10, kind: 'file' });
    await uploads.append(digest, 0, Readable.from([Buffer.alloc(5)]));
    expect(await uploads.begin({ digest, size: 20, kind: 'file' })).toMatchObject({ upload: { offset: 0 } });
  });

  it('extracts a finished directory upload into the store under its image digest', async () => {
    const tree = join(root, 'tree');
    await mkdir(join(tree, 'bin'), { recursive: true });
    await writeFile(join(tree, 'bin', 'run'), '#!/bin/sh\n', { mode: 0o755 });
    const chunks: Buffer[] = [];
    for await (const c of packDirectory(tree)) chunks.push(c as Buffer);
    const tar = Buffer.concat(chunks);
    const digest = sha(tar);
    await uploads.begin({ digest, size: tar.length, kind: 'directory' });
    await uploads.append(digest, 0, Readable.from([tar]));
    const img = await uploads.finish(digest);
    expect(img.kind).toBe('directory');
    expect(img.digest).toBe((await directoryDigest(tree)).digest);
    expect(await images.findByBlob(digest)).toEqual(img);
  });
});
