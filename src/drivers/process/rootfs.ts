// Making a domain's root filesystem from its template image. Decision: a copy, each file cloned when the
// file system can (copy-on-write on btrfs/XFS: instant, no space; a plain copy on ext4) — what
// `cp -a --reflink=auto` does, done with node's fs.cp (COPYFILE_FICLONE, timestamps and symlinks kept
// as they are) so that a burst of instances does not fork one `cp` process each from the daemon (a fork
// of the daemon costs tens of ms of its one thread under load; measured in bench/instances-ready).
// Not a hardlink tree: a service that writes a file in place would then change the cached,
// content-addressed image of every other instance. A tar image is extracted; a single file is copied in
// under its own name. Built into `<rootfs>.partial` and renamed, so a half-made rootfs is never taken
// for a finished one.

import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { cp, mkdir, rename, rm, stat } from 'node:fs/promises';
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
      await cloneTree(image.path, partial, signal);
    } else {
      await mkdir(partial, { recursive: true });
      if (kind === 'tar') {
        await run('tar', ['-xf', image.path, '-C', partial, '--no-same-owner'], { signal });
      } else {
        await cloneTree(image.path, join(partial, basename(image.path)), signal);
      }
    }
    await rm(rootfs, { recursive: true, force: true });
    await rename(partial, rootfs);
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err;
  }
}

/** Copies `from` (a file or a directory tree) to `to`, cloning files where the file system can. An abort
 *  stops the copy before its next file. */
async function cloneTree(from: string, to: string, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  await cp(from, to, {
    recursive: true,
    mode: constants.COPYFILE_FICLONE,
    preserveTimestamps: true,
    verbatimSymlinks: true,
    errorOnExist: true,
    force: false,
    filter: () => {
      signal?.throwIfAborted();
      return true;
    },
  });
}
