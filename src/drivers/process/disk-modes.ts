// Which copy-on-write ways of making a domain's root filesystem this host allows, probed once per driver
// on the file system that holds the domains: an overlay mount (the image as the read-only lower layer, the
// domain's own upper layer: nothing is copied, and chown copies up metadata only, `metacopy=on`) needs
// xenosd to be root — bubblewrap 0.8 cannot mount an overlay inside an unprivileged sandbox (0.9 added
// `--overlay`); a reflink copy (FICLONE: shared blocks until written, btrfs/XFS) needs a file system that
// clones. Both probes do the real thing in a scratch directory and report why not, for the Host condition
// and the instance's `status.disk`.

import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { chown, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** How long one mount or unmount may take before it is abandoned. */
const MOUNT_TIMEOUT_MS = 30_000;

export interface ModeProbe {
  usable: boolean;
  /** Why not, when not usable. */
  reason?: string;
}

export interface DiskModes {
  overlay: ModeProbe;
  reflink: ModeProbe;
}

/** What the driver may use: `auto` takes the best the host allows; the others force a fallback. */
export type DiskModeChoice = 'auto' | 'overlay' | 'reflink' | 'copy';

/** Characters the overlay's mount options cannot carry unescaped (`lowerdir=a:b` is two layers). */
const UNSAFE_OPTION_CHARS = /[,:\\\n]/;

/** The overlay mount options for a domain: its image below, its own layer above. Undefined when a path
 *  holds a character mount options cannot carry. */
export function overlayOptions(lower: string, upper: string, work: string): string | undefined {
  if ([lower, upper, work].some((p) => UNSAFE_OPTION_CHARS.test(p))) return undefined;
  return `lowerdir=${lower},upperdir=${upper},workdir=${work},metacopy=on`;
}

/** An overlay mount; the paths are relative to `cwd`, as the mount is made from there: a domain can read
 *  the options in its /proc/self/mountinfo, and relative paths do not tell it where the data dir is. */
export interface OverlayMount {
  cwd: string;
  lower: string;
  upper: string;
  work: string;
  target: string;
}

export async function mountOverlay(m: OverlayMount, signal?: AbortSignal): Promise<void> {
  const options = overlayOptions(m.lower, m.upper, m.work);
  if (!options) throw new Error(`a path holds one of , : \\ (overlay options cannot carry them): ${m.lower}`);
  try {
    await run('mount', ['-t', 'overlay', 'overlay', '-o', options, m.target], {
      cwd: m.cwd,
      timeout: MOUNT_TIMEOUT_MS,
      signal,
    });
  } catch (err) {
    throw new Error(firstLine(err));
  }
}

/** Whether `path` is a mount point (its device differs from its parent's). */
export async function isMountPoint(path: string): Promise<boolean> {
  const [own, parent] = await Promise.all([
    stat(path).catch(() => undefined),
    stat(dirname(path)).catch(() => undefined),
  ]);
  return !!own && !!parent && own.dev !== parent.dev;
}

/** Unmounts `path` when it is a mount point; a busy mount is detached (it goes once nothing uses it). */
export async function unmountIfMounted(path: string, signal?: AbortSignal): Promise<void> {
  if (!(await isMountPoint(path))) return;
  try {
    await run('umount', [path], { timeout: MOUNT_TIMEOUT_MS, signal });
  } catch {
    await run('umount', ['--lazy', path], { timeout: MOUNT_TIMEOUT_MS, signal });
  }
}

/** Probes both ways in a scratch directory under `dir` (created when missing). Never throws. */
export async function probeDiskModes(dir: string, signal?: AbortSignal): Promise<DiskModes> {
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch(() => {});
  let scratch: string;
  try {
    scratch = await mkdtemp(join(dir, '.disk-probe-'));
  } catch (err) {
    const reason = `cannot probe ${dir}: ${firstLine(err)}`;
    return { overlay: { usable: false, reason }, reflink: { usable: false, reason } };
  }
  try {
    return {
      overlay: await probeOverlay(scratch, signal),
      reflink: await probeReflink(scratch),
    };
  } finally {
    await unmountIfMounted(join(scratch, 'merged')).catch(() => {});
    await rm(scratch, { recursive: true, force: true }).catch(() => {});
  }
}

async function probeOverlay(scratch: string, signal?: AbortSignal): Promise<ModeProbe> {
  if (process.getuid?.() !== 0) {
    return {
      usable: false,
      reason:
        'xenosd is not root: an overlay would have to be mounted inside the unprivileged sandbox, which bubblewrap 0.8 cannot do',
    };
  }
  const filesystems = await readFile('/proc/filesystems', 'utf8').catch(() => '');
  if (!/\toverlay$/m.test(filesystems)) {
    return { usable: false, reason: 'the kernel has no overlay file system (modprobe overlay)' };
  }
  const [lower, , , merged] = ['lower', 'upper', 'work', 'merged'].map((d) => join(scratch, d));
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) await mkdir(join(scratch, d));
    await writeFile(join(lower, 'f'), 'image');
    await mountOverlay(
      { cwd: scratch, lower: 'lower', upper: 'upper', work: 'work', target: 'merged' },
      signal,
    );
    // What a domain's preparation does: give the files to another uid, then write one.
    await chown(join(merged, 'f'), 65534, 65534);
    await writeFile(join(merged, 'f'), 'domain');
    const image = await readFile(join(lower, 'f'), 'utf8');
    const owner = (await stat(join(lower, 'f'))).uid;
    if (image !== 'image' || owner !== 0) return { usable: false, reason: 'a write reached the lower layer' };
    return { usable: true };
  } catch (err) {
    return { usable: false, reason: `an overlay mount failed here: ${firstLine(err)}` };
  }
}

async function probeReflink(scratch: string): Promise<ModeProbe> {
  const from = join(scratch, 'reflink-src');
  try {
    await writeFile(from, 'image');
    await copyFile(from, join(scratch, 'reflink-dst'), constants.COPYFILE_FICLONE_FORCE);
    return { usable: true };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? firstLine(err);
    return {
      usable: false,
      reason: `the file system under ${dirname(scratch)} cannot clone files (${code})`,
    };
  }
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  return (e.stderr || e.message || String(err)).trim().split('\n')[0];
}
