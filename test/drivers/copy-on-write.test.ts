// Copy-on-write domain files with real sandboxed domains: as root, a directory image is the read-only lower
// layer of each domain's overlay — two domains of one image write, delete and replace files and each sees
// only its own changes, the image's digest never changes, chown copies up no file data, deleting a domain
// removes its layer alone, an overlay lost to a reboot is mounted again with the domain's writes, and the
// mount options a domain can read name no host path. On a file system that clones (XFS with reflink, loop
// mounted for the test), a reflink copy whose files share their blocks with the image. Where the host
// cannot (not root, forced), the domain gets a copy and its status and the Host condition say so and why.

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { DomainSpec, InstanceIdentity } from '../../src/drivers/driver.ts';
import { domainIdFor } from '../../src/drivers/driver.ts';
import { isMountPoint, unmountIfMounted } from '../../src/drivers/process/disk-modes.ts';
import { ProcessDriver } from '../../src/drivers/process/process-driver.ts';
import { directoryDigest } from '../../src/images/digest.ts';
import { DriverHarness, testInstance, waitForState } from './driver-contract.ts';

const ROOT = process.getuid?.() === 0;
const run = promisify(execFile);

/** A 320 MiB XFS with reflink, loop-mounted at a new directory (root and xfsprogs), or why not. */
async function reflinkFs(): Promise<{ dir: string; remove: () => Promise<void> } | string> {
  if (!ROOT) return 'needs root (a loop mount)';
  const base = await mkdtemp(join(tmpdir(), 'xenos-xfs-'));
  const img = join(base, 'fs.img');
  const dir = join(base, 'mnt');
  const remove = async () => {
    await run('umount', [dir]).catch(() => {});
    await rm(base, { recursive: true, force: true });
  };
  try {
    await run('truncate', ['-s', '320M', img]);
    await run('mkfs.xfs', ['-q', '-m', 'reflink=1', img]);
    await mkdir(dir);
    await run('mount', ['-o', 'loop', img, dir]);
    return { dir, remove };
  } catch (err) {
    await remove();
    return `no XFS with reflink here: ${(err as Error).message.split('\n')[0]}`;
  }
}
const BIG = 4 * 1024 * 1024;

/** Replaces a.txt, adds sub/new, deletes sub/b.txt, records what it read and the mount options it sees. */
const SCRIPT = [
  'cat a.txt > seen',
  'echo "$XENOS_INSTANCE_NAME" > a.txt',
  'echo new > sub/new',
  'rm sub/b.txt',
  'grep " /domain " /proc/self/mountinfo > mountinfo || true',
  'echo done > done',
  'exec sleep 600',
].join('; ');

function spec(instance: InstanceIdentity, image: string): DomainSpec {
  return {
    id: domainIdFor(instance),
    instance,
    image: { path: image, digest: 'sha256:test-cow', format: 'directory' },
    process: { command: ['/bin/sh', '-c', SCRIPT] },
  };
}

async function makeImage(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'xenos-cow-image-'));
  await writeFile(join(dir, 'a.txt'), 'image\n');
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'b.txt'), 'b\n');
  await writeFile(join(dir, 'big.bin'), Buffer.alloc(BIG, 7));
  return dir;
}

/** Bytes the files under `dir` take on disk. */
async function diskBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).blocks * 512;
  }
  return total;
}

describe('copy-on-write domain files', () => {
  const harness = new DriverHarness();
  afterEach(() => harness.cleanup());

  async function driver(init: Partial<ConstructorParameters<typeof ProcessDriver>[1]> = {}) {
    const dataDir = await harness.dataDir();
    const d = harness.track(new ProcessDriver({}, { dataDir, ...init }));
    await d.start();
    return { d, dataDir };
  }

  async function imageDir(): Promise<string> {
    const dir = await makeImage();
    harness.dirs.push(dir);
    return dir;
  }

  async function startAndWait(d: ProcessDriver, s: DomainSpec, rootfs: string) {
    await d.startDomain(s);
    await expect
      .poll(() => readFile(join(rootfs, 'done'), 'utf8').catch(() => ''), { timeout: 15_000 })
      .toBe('done\n');
  }

  it.runIf(ROOT)('gives each domain an overlay over the shared image; the image never changes', async () => {
    const { d, dataDir } = await driver();
    expect(d.hostConditions().find((c) => c.type === 'DomainDisksCopyOnWrite')).toMatchObject({
      status: 'True',
      reason: 'Overlay',
    });
    const image = await imageDir();
    const before = await directoryDigest(image);
    const [a, b] = [spec(testInstance('cow-a'), image), spec(testInstance('cow-b'), image)];
    const rootA = join(dataDir, 'domains', a.id, 'rootfs');
    const rootB = join(dataDir, 'domains', b.id, 'rootfs');
    await startAndWait(d, a, rootA);
    await startAndWait(d, b, rootB);

    for (const [s, root] of [
      [a, rootA],
      [b, rootB],
    ] as const) {
      const info = await d.inspect(s.id);
      expect(info?.disk).toMatchObject({ mode: 'Overlay' });
      expect(await isMountPoint(root)).toBe(true);
      expect(await readFile(join(root, 'seen'), 'utf8')).toBe('image\n');
      expect(await readFile(join(root, 'a.txt'), 'utf8')).toBe(`${s.instance.name}\n`);
      await expect(stat(join(root, 'sub', 'b.txt'))).rejects.toThrow();
      // Its uid owns its view of the image's files ...
      expect((await stat(join(root, 'big.bin'))).uid).toBe(info?.isolation?.uid);
      // ... yet its own layer holds no copy of their data (metadata only).
      expect(await diskBytes(join(dataDir, 'domains', s.id, 'layer'))).toBeLessThan(BIG / 4);
      // What the domain can read of its mount names no host path.
      const mountinfo = await readFile(join(root, 'mountinfo'), 'utf8');
      expect(mountinfo).toContain('lowerdir=');
      expect(mountinfo).not.toContain(dataDir);
      expect(mountinfo).not.toContain(image);
    }
    expect(await directoryDigest(image)).toEqual(before);
    expect((await stat(join(image, 'a.txt'))).uid).toBe(0);

    await d.destroy(a.id);
    await expect(stat(join(dataDir, 'domains', a.id))).rejects.toThrow();
    expect(await directoryDigest(image)).toEqual(before);
    expect(await readFile(join(rootB, 'a.txt'), 'utf8')).toBe(`${b.instance.name}\n`);
    expect((await d.inspect(b.id))?.state).toBe('running');
  });

  it.runIf(ROOT)('mounts the overlay again after a reboot, with the domain’s writes', async () => {
    const { d, dataDir } = await driver();
    const image = await imageDir();
    const s = spec(testInstance('cow-reboot'), image);
    const root = join(dataDir, 'domains', s.id, 'rootfs');
    await startAndWait(d, s, root);
    await d.stopDomain(s.id, { graceMs: 1000 });
    await waitForState(d, s.id, ['stopped', 'crashed']);
    await unmountIfMounted(root); // what a reboot does to it
    expect(await readdir(root)).toEqual([]);
    await d.startDomain(s);
    expect(await isMountPoint(root)).toBe(true);
    // Its earlier write survived: the second run read the instance's name, not the image's.
    await expect
      .poll(() => readFile(join(root, 'seen'), 'utf8').catch(() => ''), { timeout: 15_000 })
      .toBe(`${s.instance.name}\n`);
  });

  it('makes a reflink copy on a file system that clones (the files share the image’s blocks), else copies', async (ctx) => {
    const fs = await reflinkFs();
    if (typeof fs === 'string') return ctx.skip(fs);
    try {
      const image = join(fs.dir, 'image');
      await mkdir(image);
      await writeFile(join(image, 'big.bin'), Buffer.alloc(BIG, 7));
      const d = harness.track(new ProcessDriver({}, { dataDir: join(fs.dir, 'data'), diskMode: 'reflink' }));
      await d.start();
      expect(d.hostConditions().find((c) => c.type === 'DomainDisksCopyOnWrite')).toMatchObject({
        status: 'True',
        reason: 'Reflink',
      });
      const s = spec(testInstance('cow-reflink'), image);
      const info = await d.prepare(s);
      expect(info.disk?.mode).toBe('Reflink');
      const copy = join(fs.dir, 'data', 'domains', s.id, 'rootfs', 'big.bin');
      expect((await run('filefrag', ['-v', copy])).stdout).toMatch(/shared/);
      await d.destroy(s.id);
      // XFS drops the shared mark once it has freed the copy's inode, which it does in the background
      // (deferred inode inactivation): on a busy machine that can take a moment after the unlink.
      await expect
        .poll(
          async () => {
            await run('sync', []);
            return (await run('filefrag', ['-v', join(image, 'big.bin')])).stdout;
          },
          { timeout: 20_000, interval: 200 },
        )
        .not.toMatch(/shared/);
      // An image on another file system cannot be cloned: a plain copy, and it says why.
      const elsewhere = await imageDir();
      const other = await d.prepare(spec(testInstance('cow-exdev'), elsewhere));
      expect(other.disk).toMatchObject({
        mode: 'Copy',
        message: expect.stringMatching(/reflink copy failed: EXDEV/),
      });
    } finally {
      await harness.cleanup();
      await fs.remove();
    }
  });

  it('copies when told to, and the domain and the host say why', async () => {
    const { d, dataDir } = await driver({ diskMode: 'copy' });
    expect(d.hostConditions().find((c) => c.type === 'DomainDisksCopyOnWrite')).toMatchObject({
      status: 'False',
      reason: 'PlainCopy',
    });
    const image = await imageDir();
    const before = await directoryDigest(image);
    const s = spec(testInstance('cow-copy'), image);
    const root = join(dataDir, 'domains', s.id, 'rootfs');
    const info = await d.prepare(s);
    expect(info.disk?.mode).toBe('Copy');
    expect(info.disk?.message).toMatch(/told to copy/);
    expect(await isMountPoint(root)).toBe(false);
    await startAndWait(d, s, root);
    expect(await directoryDigest(image)).toEqual(before);
  });

  it.skipIf(ROOT)('without root, falls back to a copy and says the overlay needs root', async () => {
    const { d } = await driver();
    const image = await imageDir();
    const info = await d.prepare(spec(testInstance('cow-user'), image));
    expect(['Reflink', 'Copy']).toContain(info.disk?.mode);
    const condition = d.hostConditions().find((c) => c.type === 'DomainDisksCopyOnWrite');
    expect(condition?.message).toMatch(/not root/);
  });
});
