// Making a domain's root filesystem from its template image. Decision: a copy with `cp -a --reflink=auto`
// — copy-on-write clones on btrfs/XFS (instant, no space), a plain copy on ext4. Not a hardlink tree: a
// service that writes a file in place would then change the cached, content-addressed image of every
// other instance. A tar image is extracted; a single file is copied in under its own name.
// Built into `<rootfs>.partial` and renamed, so a half-made rootfs is never taken for a finished one.

import { execFile } from 'node:child_process';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import type { DomainImage } from '../driver.ts';

const run = promisify(execFile);

export type ImageKind = 'directory' | 'tar' | 'file';

export async function imageKind(image: DomainImage): Promise<ImageKind> {
  if (image.format === 'directory' || image.format === 'tar') return image.format;
  if (image.format === 'file') return 'file';
  const st = await stat(image.path);
  if (st.isDirectory()) return 'directory';
  if (/\.(tar|tar\.gz|tgz|tar\.xz|tar\.zst)$/.test(image.path)) return 'tar';
  return 'file';
}

/** Replaces `rootfs` with a fresh copy of `image`. Aborting kills the copy and leaves no partial rootfs. */
export async function materializeRootfs(
  image: DomainImage,
  rootfs: string,
  signal?: AbortSignal,
): Promise<void> {
  const kind = await imageKind(image);
  const partial = `${rootfs}.partial`;
  await rm(partial, { recursive: true, force: true });
  try {
    if (kind === 'directory') {
      await run('cp', ['-a', '--reflink=auto', '--', image.path, partial], { signal });
    } else {
      await mkdir(partial, { recursive: true });
      if (kind === 'tar') {
        await run('tar', ['-xf', image.path, '-C', partial, '--no-same-owner'], { signal });
      } else {
        await run('cp', ['-a', '--reflink=auto', '--', image.path, join(partial, basename(image.path))], {
          signal,
        });
      }
    }
    await rm(rootfs, { recursive: true, force: true });
    await rename(partial, rootfs);
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err;
  }
}
