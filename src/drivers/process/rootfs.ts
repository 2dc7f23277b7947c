// Making a domain's root filesystem from its template image, copy-on-write where the host allows it
// (disk-modes.ts probes which way): a directory image becomes an overlay mount — the image read-only
// below, the domain's own layer (`layer/upper`) above, so nothing is copied and the domain's writes never
// reach the shared image; where that cannot be, a reflink copy (cloned files share blocks until written:
// btrfs, XFS); else a plain copy. Copies are made with node's fs.cp (symlinks and timestamps kept as they
// are), so that a burst of instances does not fork one `cp` process each from the daemon (a fork of the
// daemon costs tens of ms of its one thread under load; measured in bench/instances-ready).
// Never a hardlink tree: a service that writes a file in place would then change the cached,
// content-addressed image of every other instance. A tar image is extracted; a single file is copied in
// under its own name. A copy is built into `<rootfs>.partial` and renamed, so a half-made rootfs is never
// taken for a finished one; the record (written after) says which way was used.

import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { cp, mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { DiskReport, DomainImage } from '../driver.ts';
import {
  type DiskModeChoice,
  type DiskModes,
  isMountPoint,
  type ModeProbe,
  mountOverlay,
  type OverlayMount,
  unmountIfMounted,
} from './disk-modes.ts';
import type { DomainPaths } from './domain-record.ts';

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

/** Unmounts and removes a domain's rootfs and its overlay layer (never the image below it). */
export async function removeRootfs(paths: DomainPaths, signal?: AbortSignal): Promise<void> {
  await unmountIfMounted(paths.rootfs, signal);
  await rm(paths.rootfs, { recursive: true, force: true });
  await rm(`${paths.rootfs}.partial`, { recursive: true, force: true });
  await rm(paths.layer, { recursive: true, force: true });
}

/** Replaces the domain's rootfs with a fresh one made from `image`, the best way `modes` allows (or the
 *  way `choice` forces); says which. Aborting kills the copy and leaves no partial rootfs. */
export async function materializeRootfs(
  image: DomainImage,
  paths: DomainPaths,
  modes: DiskModes,
  choice: DiskModeChoice,
  signal?: AbortSignal,
): Promise<DiskReport> {
  const kind = await imageKind(image);
  await removeRootfs(paths, signal);
  const notOverlay: string[] = [];
  if (kind === 'directory') {
    const why = wayNotTaken('overlay', modes.overlay, choice);
    if (why) notOverlay.push(why);
    else {
      try {
        await mountRootfs(image.path, paths, signal);
        return overlayReport(image.path);
      } catch (err) {
        if (signal?.aborted) throw err;
        await removeRootfs(paths);
        notOverlay.push(`its overlay mount failed: ${(err as Error).message}`);
      }
    }
  }
  let noReflink = kind === 'tar' ? 'a tar image is extracted' : wayNotTaken('reflink', modes.reflink, choice);
  if (!noReflink) {
    try {
      await copyRootfs(image.path, kind, paths, constants.COPYFILE_FICLONE_FORCE, signal);
      return { mode: 'Reflink', message: `a reflink copy of ${image.path} (blocks shared until written)` };
    } catch (err) {
      if (signal?.aborted) throw err;
      // The probe cloned within the domains' file system; an image cache on another one cannot.
      noReflink = `its reflink copy failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
  }
  await copyRootfs(image.path, kind, paths, constants.COPYFILE_FICLONE, signal);
  return { mode: 'Copy', message: `a plain copy of ${image.path}: ${[...notOverlay, noReflink].join('; ')}` };
}

/** Copies (or extracts) the image into `<rootfs>.partial` with `cloneMode`, then renames it into place. */
async function copyRootfs(
  imagePath: string,
  kind: ImageKind,
  paths: DomainPaths,
  cloneMode: number,
  signal?: AbortSignal,
): Promise<void> {
  const partial = `${paths.rootfs}.partial`;
  await rm(partial, { recursive: true, force: true });
  try {
    if (kind === 'directory') {
      await cloneTree(imagePath, partial, cloneMode, signal);
    } else {
      await mkdir(partial, { recursive: true });
      if (kind === 'tar') {
        await run('tar', ['-xf', imagePath, '-C', partial, '--no-same-owner'], { signal });
      } else {
        await cloneTree(imagePath, join(partial, basename(imagePath)), cloneMode, signal);
      }
    }
    await rename(partial, paths.rootfs);
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err;
  }
}

/** Mounts the overlay again after a reboot (the domain's layer is kept on disk; the mount is not). */
export async function ensureRootfsMounted(
  image: DomainImage,
  paths: DomainPaths,
  disk: DiskReport | undefined,
  signal?: AbortSignal,
): Promise<void> {
  if (disk?.mode !== 'Overlay' || (await isMountPoint(paths.rootfs))) return;
  await stat(image.path).catch(() => {
    throw new Error(`its image ${image.path} is gone from this host's image cache`);
  });
  await mountOverlay(overlayOf(image.path, paths), signal);
}

export function overlayReport(imagePath: string): DiskReport {
  return {
    mode: 'Overlay',
    message: `an overlay: ${imagePath} read-only below, the domain's own layer above (its writes only)`,
  };
}

/** The domain's overlay, relative to its directory: the image below, layer/upper above, at rootfs/. */
function overlayOf(imagePath: string, paths: DomainPaths): OverlayMount {
  return {
    cwd: paths.dir,
    lower: relative(paths.dir, imagePath),
    upper: relative(paths.dir, join(paths.layer, 'upper')),
    work: relative(paths.dir, join(paths.layer, 'work')),
    target: relative(paths.dir, paths.rootfs),
  };
}

async function mountRootfs(imagePath: string, paths: DomainPaths, signal?: AbortSignal): Promise<void> {
  await mkdir(paths.layer, { recursive: true, mode: 0o700 });
  await mkdir(join(paths.layer, 'upper'));
  await mkdir(join(paths.layer, 'work'));
  await mkdir(paths.rootfs);
  await mountOverlay(overlayOf(imagePath, paths), signal);
}

/** Why `way` is not used, or undefined when it is. */
function wayNotTaken(
  way: 'overlay' | 'reflink',
  probe: ModeProbe,
  choice: DiskModeChoice,
): string | undefined {
  if (choice !== 'auto' && choice !== way) {
    return choice === 'copy'
      ? `${way}: the driver was told to copy`
      : `${way}: the driver was told to use ${choice}`;
  }
  return probe.usable ? undefined : `no ${way}: ${probe.reason}`;
}

/** Copies `from` (a file or a directory tree) to `to`, cloning files where the file system can. An abort
 *  stops the copy before its next file. */
async function cloneTree(from: string, to: string, mode: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  await cp(from, to, {
    recursive: true,
    mode,
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
