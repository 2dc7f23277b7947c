// The image source of a host without peers: the image its store holds, or ImageNotHeldError naming the
// digest and how to get the image onto the host.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ImageNotHeldError } from '../../src/images/errors.ts';
import { ImageStore } from '../../src/images/image-store.ts';
import { importInto } from '../../src/images/import-image.ts';
import { localImageSource } from '../../src/images/local-image-source.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'xenos-local-source-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

it('gives the image the store holds, and says how to get one it does not', async () => {
  const store = new ImageStore({ cacheDir: join(root, 'images') });
  await writeFile(join(root, 'disk.raw'), 'bytes');
  const held = await importInto(store, { path: join(root, 'disk.raw') }, undefined);
  const source = localImageSource(store);
  expect(await source.ensure(held.digest)).toEqual(held);
  const missing = `sha256:${'0'.repeat(64)}`;
  await expect(source.ensure(missing)).rejects.toThrow(ImageNotHeldError);
  await expect(source.ensure(missing)).rejects.toThrow(
    new RegExp(`image ${missing} is not on this host: .*xenosctl image push PATH`),
  );
});
