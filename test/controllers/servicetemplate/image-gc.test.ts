// Image garbage collection on real files and a real store: an image no template names and no domain has
// is removed once unused for the grace period (a fake clock moves time), never before, never while a
// template names it or a domain of this host has it, not in a round whose driver cannot list its domains;
// a pull left behind goes too, a pull open in this process does not; abandoned uploads are swept.

import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImageGc } from '../../../controllers/servicetemplate/image-gc.ts';
import type { DomainInfo } from '../../../src/drivers/driver.ts';
import { ImageStore } from '../../../src/images/image-store.ts';
import { importInto } from '../../../src/images/import-image.ts';
import { UploadSessions } from '../../../src/images/upload-sessions.ts';
import { SERVICE_TEMPLATE } from '../../../src/model/kinds.ts';
import { openStore, type SqliteStore } from '../../../src/store/sqlite-store.ts';

const HOUR = 3600_000;
const sha = (b: string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('ImageGc', () => {
  let root: string;
  let store: SqliteStore;
  let images: ImageStore;
  let now: number;
  let domains: Partial<DomainInfo>[] | Error;
  let gc: ImageGc;
  let uploads: UploadSessions;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'xenos-gc-'));
    store = openStore({ path: join(root, 'state.db'), writer: 'host-1', namespaced: (k) => k !== 'Host' });
    images = new ImageStore({ cacheDir: join(root, 'images'), chunkSize: 1024 });
    uploads = new UploadSessions({ store: images }, { maxBytes: 1 << 20, abandonAfterMs: HOUR });
    domains = [];
    // Imports are stamped with the real clock; the collector's clock starts a minute later (so every
    // import of the test is older than its now) and is moved by hand.
    now = Date.now() + 60_000;
    gc = new ImageGc(
      {
        store,
        images,
        uploads,
        driver: {
          list: async () => {
            if (domains instanceof Error) throw domains;
            return domains as DomainInfo[];
          },
        },
      },
      { graceMs: HOUR, now: () => now },
    );
  });
  afterEach(async () => {
    store.close();
    await rm(root, { recursive: true, force: true });
  });

  async function image(content: string): Promise<string> {
    const file = join(root, `${sha(content).slice(7, 15)}.raw`);
    await writeFile(file, content);
    return (await importInto(images, { path: file }, undefined)).digest;
  }

  function template(name: string, digest: string): void {
    store.create({
      apiVersion: 'xenos.io/v1alpha1',
      kind: SERVICE_TEMPLATE.kind,
      metadata: { name, namespace: 'default' },
      spec: { image: { digest } },
    } as never);
  }

  const held = async () => (await images.list()).map((i) => i.digest).sort();

  it('removes an unused image only after the grace period, counted from when it was first seen unused', async () => {
    const old = await image('old');
    expect(await gc.collect()).toEqual([]); // seen unused now
    now += HOUR - 1;
    expect(await gc.collect()).toEqual([]);
    now += 1;
    expect(await gc.collect()).toEqual([old]);
    expect(await images.get(old)).toBeUndefined();
  });

  it('keeps what a template names or a domain of this host has, and frees it once neither does', async () => {
    const named = await image('named');
    const running = await image('running');
    template('web', named);
    domains = [{ id: 'd1', imageDigest: running }];
    await gc.collect();
    now += 5 * HOUR;
    expect(await gc.collect()).toEqual([]);
    expect(await held()).toEqual([named, running].sort());
    store.delete({ kind: SERVICE_TEMPLATE.kind, namespace: 'default', name: 'web' });
    domains = [];
    expect(await gc.collect()).toEqual([]); // unused from now on: the grace starts again
    now += HOUR;
    expect((await gc.collect()).sort()).toEqual([named, running].sort());
  });

  it('removes nothing in a round whose driver cannot list its domains', async () => {
    await image('x');
    await gc.collect();
    now += 2 * HOUR;
    domains = new Error('the driver is restarting');
    expect(await gc.collect()).toEqual([]);
    expect((await held()).length).toBe(1);
  });

  it('removes a pull left behind, never a pull open in this process', async () => {
    const source = new ImageStore({ cacheDir: join(root, 'other'), chunkSize: 1024 });
    const file = join(root, 'big.raw');
    await writeFile(file, Buffer.alloc(5000, 3));
    const img = await importInto(source, { path: file }, undefined);
    const m = (await source.manifest(img.digest))!;
    const { manifestDigest } = await import('../../../src/images/manifest.ts');
    const pull = await images.beginPull(m, manifestDigest(m));
    await pull.writeChunk(0, (await source.readChunk(img.digest, 0))!);
    await gc.collect();
    now += 2 * HOUR;
    expect(await gc.collect()).toEqual([]);
    await pull.close();
    expect(await gc.collect()).toEqual([]); // unused from now on
    now += HOUR;
    expect(await gc.collect()).toEqual([img.digest]);
  });

  it('sweeps uploads nobody wrote to for their timeout', async () => {
    const digest = sha('upload');
    await uploads.begin({ digest, size: 6, kind: 'file' });
    await uploads.append(digest, 0, Readable.from([Buffer.from('upl')]));
    await gc.collect();
    expect(await uploads.state(digest)).toMatchObject({ offset: 3 });
    now += HOUR + 1000;
    await gc.collect();
    expect(await uploads.state(digest)).toBeUndefined();
  });
});
