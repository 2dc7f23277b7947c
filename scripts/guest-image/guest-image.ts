// Builds the demo guest image (README.md beside this file says what the guest does) from Debian packages into a
// directory: `vmlinux` (the kernel, uncompressed: QEMU boots it directly), `vmlinuz` (the same kernel as
// Debian ships it, for loaders that want a bzImage), `initrd.img` (busybox, the modules, the init scripts)
// and `disk.img` (a raw ext4 base disk holding the web service), plus `guest.json` (what it was built from).
//
// Rebuilt only when an input changed: the key hashes the package versions apt offers now, the files under
// initramfs/ and disk/ beside this file, and this builder's own source. A build happens in a temporary directory
// beside the target and is renamed into place, under a lock, so readers never see half an image and two
// builders never build at once. No step needs root (apt-get download, dpkg-deb -x, cpio, mke2fs -d), except
// installing missing host tools. The kernels and the initrd are reproducible (fixed times and owners, sorted
// archive); the disk's file system gets a fixed UUID and hash seed, but mke2fs copies the source files'
// change times, so its bytes differ from build to build.

import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { BuildError } from '../lib/build-error.ts';
import { acquireBuildLock } from '../lib/build-lock.ts';
import {
  downloadPackage,
  installHostPackages,
  kernelOfMeta,
  requireCandidates,
  run,
  runBytes,
  unpackPackage,
} from '../lib/debian.ts';
import { copyModuleClosure } from '../lib/kernel-modules.ts';
import { kernelConfig, uncompressKernel } from './kernel.ts';

const GUEST_SRC = dirname(fileURLToPath(import.meta.url));
/** The files of a built image (plus guest.json). */
export const IMAGE_FILES = ['vmlinux', 'vmlinuz', 'initrd.img', 'disk.img'] as const;
/** The commands the build runs, and the Debian packages that provide them. */
const HOST_TOOLS = ['apt-get:apt', 'dpkg-deb:dpkg', 'cpio:cpio', 'mke2fs:e2fsprogs', 'xz:xz-utils'];
/** The files of this folder that decide what a build makes (with initramfs/ and disk/). */
const BUILDER_SOURCES = ['guest-image.ts', 'kernel.ts'];
/** The shared plumbing that decides what is downloaded, unpacked and copied in. */
const SHARED_SOURCES = [
  join(GUEST_SRC, '..', 'lib', 'debian.ts'),
  join(GUEST_SRC, '..', 'lib', 'kernel-modules.ts'),
];
const KERNEL_META = 'linux-image-amd64';
const BUSYBOX = 'busybox-static';
/** The kernel modules the guest loads at boot, with the config option that builds each (skipped when built in). */
const MODULES: Array<[module: string, option: string]> = [
  ['crc32c_generic', 'CONFIG_CRYPTO_CRC32C'], // ext4's metadata checksums ask the crypto API for crc32c
  ['pvpanic_mmio', 'CONFIG_PVPANIC_MMIO'], // tells QEMU about a panic (-device pvpanic)
  ['virtio_pci', 'CONFIG_VIRTIO_PCI'],
  ['virtio_blk', 'CONFIG_VIRTIO_BLK'],
  ['virtio_net', 'CONFIG_VIRTIO_NET'],
  ['ext4', 'CONFIG_EXT4_FS'],
  ['button', 'CONFIG_ACPI_BUTTON'], // the ACPI power button (QMP system_powerdown)
  ['evdev', 'CONFIG_INPUT_EVDEV'], // how busybox acpid hears the button
  // Under Xen (a PVH or HVM domain): its paravirtual disk (/dev/xvda) and network; the console (hvc0) is
  // built in. On QEMU they find no Xen and load nothing.
  ['xen_blkfront', 'CONFIG_XEN_BLKDEV_FRONTEND'],
  ['xen_netfront', 'CONFIG_XEN_NETDEV_FRONTEND'],
];
/** The kernel must boot through PVH (QEMU -kernel vmlinux, a Xen PVH domain) and have these built in
 *  (hvc0, Xen's console, among them). */
const REQUIRED_BUILT_IN = [
  'CONFIG_PVH',
  'CONFIG_BLK_DEV_INITRD',
  'CONFIG_DEVTMPFS',
  'CONFIG_SERIAL_8250_CONSOLE',
  'CONFIG_HVC_XEN',
];
const DISK_SIZE = '32M';
/** Fixed identity and times: the same inputs give the same initrd (and so the same digest for it). */
const DISK_UUID = '5e9a1d1e-0b5e-4d1e-9a55-7e5a0c0ffee0';
const SOURCE_DATE_EPOCH = 1_700_000_000;

export interface GuestImageInfo {
  key: string;
  kernel: string;
  busybox: string;
}

export interface EnsureGuestImageOptions {
  /** The image directory to (re)build. */
  dir: string;
  /** Progress lines for people. */
  log?: (line: string) => void;
  /** Rebuild even when the key matches. */
  force?: boolean;
}

/** The default image directory of this checkout: `<repo>/build/guest`, or $XENOS_GUEST_DIR. */
export function defaultGuestDir(): string {
  return process.env.XENOS_GUEST_DIR || join(GUEST_SRC, '..', '..', 'build', 'guest');
}

/** Builds the guest image in `dir` unless it is up to date; returns what the image was built from. */
export async function ensureGuestImage(
  opts: EnsureGuestImageOptions,
): Promise<GuestImageInfo & { built: boolean }> {
  const log = opts.log ?? (() => {});
  const arch = run('dpkg', ['--print-architecture']).trim();
  if (arch !== 'amd64') {
    throw new BuildError(`the demo guest is an x86-64 guest built from amd64 packages; this host is ${arch}`);
  }
  installHostPackages(HOST_TOOLS);
  const inputs = resolveInputs(log);
  const key = inputKey(inputs);
  const current = readInfo(opts.dir);
  if (!opts.force && current?.key === key) return { ...current, built: false };

  mkdirSync(dirname(opts.dir), { recursive: true });
  const lock = await acquireBuildLock(`${opts.dir}.lock`, 15 * 60_000, () =>
    log(`guest-image: another build of ${opts.dir} is running; waiting for it`),
  );
  try {
    const again = readInfo(opts.dir);
    if (!opts.force && again?.key === key) return { ...again, built: false };
    const work = `${opts.dir}.tmp-${process.pid}`;
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    try {
      const info = build(work, inputs, key, log);
      replaceDir(join(work, 'image'), opts.dir);
      log(`guest-image: built ${opts.dir} (${info.kernel}, ${info.busybox})`);
      return { ...info, built: true };
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  } finally {
    lock.release();
  }
}

interface Inputs {
  kernelPackage: string;
  kernelVersion: string;
  busyboxVersion: string;
}

/** The package versions apt offers now (refreshing apt's lists once when they do not know the packages). */
function resolveInputs(log: (line: string) => void): Inputs {
  const need = "the demo guest needs Debian's main archive in apt's sources";
  const found = requireCandidates([KERNEL_META, BUSYBOX], need, (l) => log(`guest-image: ${l}`));
  const kernel = kernelOfMeta(found.get(KERNEL_META));
  return {
    kernelPackage: kernel.package,
    kernelVersion: kernel.version,
    busyboxVersion: found.get(BUSYBOX)!.version,
  };
}

/** The cache key: the package versions, the guest's files and this builder's source. */
function inputKey(inputs: Inputs): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ inputs, DISK_SIZE, DISK_UUID, SOURCE_DATE_EPOCH, MODULES }));
  for (const file of listFiles(GUEST_SRC)) {
    if (!BUILDER_SOURCES.includes(file) && !/^(initramfs|disk)\//.test(file)) continue;
    const full = join(GUEST_SRC, file);
    hash.update(`${file}\0${statSync(full).mode & 0o111 ? 'x' : '-'}\0`);
    hash.update(readFileSync(full));
  }
  for (const full of SHARED_SOURCES) hash.update(readFileSync(full));
  return hash.digest('hex');
}

function build(work: string, inputs: Inputs, key: string, log: (line: string) => void): GuestImageInfo {
  const debs = join(work, 'debs');
  const kernelTree = join(work, 'kernel');
  const busyboxTree = join(work, 'busybox');
  const image = join(work, 'image');
  for (const d of [debs, kernelTree, busyboxTree, image]) mkdirSync(d);

  log(`guest-image: downloading ${inputs.kernelPackage} ${inputs.kernelVersion} and ${BUSYBOX}`);
  unpackPackage(downloadPackage(inputs.kernelPackage, inputs.kernelVersion, debs), kernelTree);
  unpackPackage(downloadPackage(BUSYBOX, inputs.busyboxVersion, debs), busyboxTree);
  const busybox = join(busyboxTree, 'bin', 'busybox');

  const release = inputs.kernelPackage.replace(/^linux-image-/, '');
  const config = kernelConfig(join(kernelTree, 'boot', `config-${release}`));
  for (const option of REQUIRED_BUILT_IN) {
    if (config.get(option) !== 'y') throw new BuildError(`${inputs.kernelPackage} lacks ${option}=y`);
  }
  const bzImage = join(kernelTree, 'boot', `vmlinuz-${release}`);
  cpSync(bzImage, join(image, 'vmlinuz'));
  writeFileSync(join(image, 'vmlinux'), uncompressKernel(bzImage));

  log('guest-image: making initrd.img (busybox, modules, init scripts)');
  buildInitramfs(join(work, 'initramfs'), join(image, 'initrd.img'), {
    busybox,
    kernelTree,
    release,
    modules: MODULES.filter(([module, option]) => {
      const value = config.get(option);
      if (value === undefined) throw new BuildError(`${inputs.kernelPackage} lacks ${option} (${module})`);
      return value === 'm';
    }).map(([module]) => module),
  });

  log(`guest-image: making disk.img (ext4, ${DISK_SIZE})`);
  const diskTree = join(work, 'disk');
  cpSync(join(GUEST_SRC, 'disk'), diskTree, { recursive: true });
  fixTimes(diskTree);
  run(
    'mke2fs',
    [
      '-q',
      '-t',
      'ext4',
      '-d',
      diskTree,
      '-L',
      'xenos-data',
      '-U',
      DISK_UUID,
      '-E',
      `root_owner=0:0,hash_seed=${DISK_UUID}`,
      '-F',
      join(image, 'disk.img'),
      DISK_SIZE,
    ],
    { env: { ...process.env, E2FSPROGS_FAKE_TIME: String(SOURCE_DATE_EPOCH) } },
  );

  const info: GuestImageInfo = {
    key,
    kernel: `${inputs.kernelPackage} ${inputs.kernelVersion}`,
    busybox: `${BUSYBOX} ${inputs.busyboxVersion}`,
  };
  writeFileSync(join(image, 'guest.json'), `${JSON.stringify(info, null, 2)}\n`);
  for (const f of readdirSync(image)) chmodSync(join(image, f), 0o644);
  fixTimes(image);
  return info;
}

interface InitramfsParts {
  busybox: string;
  kernelTree: string;
  release: string;
  modules: string[];
}

/** The initramfs: initramfs/ of this folder, busybox with its applet links, and the modules the guest loads. */
function buildInitramfs(root: string, out: string, parts: InitramfsParts): void {
  cpSync(join(GUEST_SRC, 'initramfs'), root, { recursive: true });
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'proc', 'sys', 'dev', 'run', 'data', 'tmp']) {
    mkdirSync(join(root, d), { recursive: true });
  }
  cpSync(parts.busybox, join(root, 'bin', 'busybox'));
  for (const applet of run(parts.busybox, ['--list-full']).split('\n').filter(Boolean)) {
    const link = join(root, applet);
    if (!existsSync(link)) symlinkSync('/bin/busybox', link);
  }

  // modules.dep for the whole kernel (busybox's depmod: the package ships none), then the closure of the
  // wanted modules copied in, with their own modules.dep for the guest's modprobe.
  const modulesDir = join(parts.kernelTree, 'lib', 'modules', parts.release);
  run(parts.busybox, ['depmod', '-b', parts.kernelTree, parts.release]);
  copyModuleClosure(modulesDir, join(root, 'lib', 'modules', parts.release), parts.modules);
  run(parts.busybox, ['depmod', '-b', root, parts.release]);
  writeFileSync(join(root, 'etc', 'modules'), `${parts.modules.join('\n')}\n`);

  fixTimes(root);
  // A newc archive owned by root with its entries in a fixed order (a directory before what it holds),
  // gzip'd by zlib (no name, no time stamp).
  const entries = ['.', ...readdirSync(root, { recursive: true }).map(String).sort()];
  const archive = runBytes('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0', '--reproducible'], {
    cwd: root,
    input: `${entries.join('\n')}\n`,
    timeoutMs: 5 * 60_000,
  });
  writeFileSync(out, gzipSync(archive, { level: 9 }));
}

/** Every file under `dir`, relative, sorted (symlinks not followed). */
function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

/** Sets every time stamp under `dir` (and `dir` itself) to SOURCE_DATE_EPOCH, symlinks included. */
function fixTimes(dir: string): void {
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    lutimesSync(join(e.parentPath, e.name), SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH);
  }
  lutimesSync(dir, SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH);
}

function readInfo(dir: string): GuestImageInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(join(dir, 'guest.json'), 'utf8')) as GuestImageInfo;
    for (const f of IMAGE_FILES) {
      if (!existsSync(join(dir, f))) return undefined;
    }
    return info;
  } catch {
    return undefined;
  }
}

/** Puts `fresh` where `dir` is: the old image is renamed away first and removed after. */
function replaceDir(fresh: string, dir: string): void {
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(fresh, dir);
  rmSync(old, { recursive: true, force: true });
}
