// Symlinks against the image digest, with an attacker's images: an image path that is itself a link
// (the cache must hold a copy, not a link to a place that can change after hashing), and directory
// images whose links lead to /etc/shadow, to the host's data dir, out through a `..` chain or a chain of
// the image's own links, or round in a loop. Links that escape are refused and nothing is cached; links
// that stay inside, dangle or loop are kept as links and hashed by their target.

import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { directoryDigest } from '../../src/images/digest.ts';
import { ImageLinkEscapeError } from '../../src/images/errors.ts';
import { importImage } from '../../src/images/import-image.ts';

describe('symlinks in image imports', () => {
  let root: string;
  let cacheDir: string;
  let image: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'xenos-links-'));
    cacheDir = join(root, 'data', 'images');
    image = join(root, 'img');
    await mkdir(join(image, 'bin'), { recursive: true });
    await writeFile(join(image, 'bin', 'run.sh'), 'echo good\n', { mode: 0o755 });
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  async function cacheIsEmpty(): Promise<void> {
    expect(await readdir(join(cacheDir, 'sha256')).catch(() => [])).toEqual([]);
    expect(await readdir(join(cacheDir, 'tmp')).catch(() => [])).toEqual([]);
  }

  it('imports the directory a linked image path points to, as a copy the source can no longer change', async () => {
    const link = join(root, 'current');
    await symlink(image, link);
    const got = await importImage({ path: link }, undefined, { cacheDir });
    expect(got.kind).toBe('directory');
    expect((await lstat(got.path)).isDirectory()).toBe(true);
    expect(got.digest).toBe((await directoryDigest(image)).digest);
    // The attacker rewrites the source after the import: the cached, digest-verified image stays as hashed.
    await writeFile(join(image, 'bin', 'run.sh'), 'echo EVIL\n');
    expect(await readFile(join(got.path, 'bin', 'run.sh'), 'utf8')).toBe('echo good\n');
    expect((await directoryDigest(got.path)).digest).toBe(got.digest);
  });

  it.each([
    ['a link to /etc/shadow', 'etc-shadow', '/etc/shadow'],
    ['an absolute link into the data dir', 'token', '@data/admin.token'],
    ['a .. chain out of the image', 'up', '../../../../../../../../etc/passwd'],
    ['a relative link to the data dir beside the image', 'data', '../../data'],
  ])('refuses %s and caches nothing', async (_what, name, target) => {
    const t = target.replace('@data', join(root, 'data'));
    await symlink(t, join(image, 'bin', name));
    const err = await importImage({ path: image }, undefined, { cacheDir }).catch((e) => e);
    expect(err).toBeInstanceOf(ImageLinkEscapeError);
    expect(err.message).toBe(
      `image ${image}: symbolic link "bin/${name}" -> ${JSON.stringify(t)} leads out of the image; ` +
        'an image may hold only links that stay inside it (relative, not climbing above its root)',
    );
    await cacheIsEmpty();
  });

  it('refuses a link that looks inside but leaves through another link of the image', async () => {
    // Lexically `s/s/s/..` stays inside; resolved as the kernel does (s -> .), it climbs above the root.
    await symlink('.', join(image, 's'));
    await symlink('s/s/s/../etc/passwd', join(image, 'sneaky'));
    await expect(importImage({ path: image }, undefined, { cacheDir })).rejects.toThrow(
      'symbolic link "sneaky" -> "s/s/s/../etc/passwd" leads out of the image',
    );
    // And through a link to an absolute path further down the chain.
    await rm(join(image, 'sneaky'));
    await symlink('/', join(image, 'bin', 'rootdir'));
    await symlink('bin/rootdir/etc', join(image, 'etc'));
    await expect(importImage({ path: image }, undefined, { cacheDir })).rejects.toThrow(ImageLinkEscapeError);
    await cacheIsEmpty();
  });

  it('keeps links that stay inside, dangle or loop, as links hashed by their target', async () => {
    await symlink('bin/run.sh', join(image, 'start'));
    await symlink('../bin', join(image, 'bin', 'self'));
    await symlink('missing/../../../../etc', join(image, 'dangling'));
    await symlink('loop-b', join(image, 'loop-a'));
    await symlink('loop-a', join(image, 'loop-b'));
    const got = await importImage({ path: image }, undefined, { cacheDir });
    expect(got.digest).toBe((await directoryDigest(image)).digest);
    for (const [name, target] of [
      ['start', 'bin/run.sh'],
      ['bin/self', '../bin'],
      ['dangling', 'missing/../../../../etc'],
      ['loop-a', 'loop-b'],
    ]) {
      expect((await lstat(join(got.path, name))).isSymbolicLink()).toBe(true);
      expect(await readlink(join(got.path, name))).toBe(target);
    }
    // Another target is another image.
    await rm(join(image, 'start'));
    await symlink('bin/self/run.sh', join(image, 'start'));
    expect((await directoryDigest(image)).digest).not.toBe(got.digest);
  });
});
