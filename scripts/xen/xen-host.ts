// A real Xen host for the tests: Xen 4.17 (Debian's hypervisor) booted under QEMU with a Debian dom0 that
// runs the real toolstack (xl, oxenstored, xenconsoled, QEMU for qcow2 disks) and Node 22. ensureXenHost()
// builds it into build/xen-host (or $XENOS_XEN_HOST_DIR) when missing or stale; test/drivers/xen/xen-host.ts
// boots it with a test's files on a second disk.
//
//   xen.bin          the hypervisor (multiboot: QEMU's -kernel)
//   vmlinuz          dom0's kernel (Debian's linux-image for amd64, the demo guest's too)
//   initrd.cpio.gz   busybox, the virtio and ext4 modules; mounts the root disk and starts dom0-init
//   rootfs.img       ext4: `debootstrap --variant=minbase` of bookworm with xen-utils-4.17 and friends, the
//                    kernel modules dom0 loads, node, and dom0-init.sh (beside this file) as /sbin/xenos-init
//
// It installs what it lacks itself (debootstrap, e2fsprogs, cpio, kmod). A build downloads about 110 MB and
// takes about 80 s here, most of it debootstrap. The cache key: the packages' versions, node's version,
// this file and dom0-init.sh; one build at a time per directory.

import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
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

const HERE = dirname(fileURLToPath(import.meta.url));
const DOM0_INIT = join(HERE, 'dom0-init.sh');
const KERNEL_MODULES_SOURCE = join(HERE, '..', 'lib', 'kernel-modules.ts');
const HYPERVISOR = 'xen-hypervisor-4.17-amd64';
const KERNEL_META = 'linux-image-amd64';
const BUSYBOX = 'busybox-static';
/** dom0's packages: the toolstack, QEMU for qdisk (qcow2) backends, dnsmasq for the Xen driver's user
 *  network, and what the init script runs. */
const DOM0_PACKAGES = [
  'xen-utils-4.17',
  'xenstore-utils',
  'qemu-system-xen',
  'qemu-utils',
  'busybox',
  'iproute2',
  'dnsmasq-base',
  'dnsmasq-utils',
  'kmod',
  'procps',
];
/** The modules dom0 loads: Xen's device files and backends, bridges, its own disks and NIC (the link
 *  between two test hosts), and 9p with overlayfs (a directory of the host shown to dom0 — the
 *  repository, when a test runs Xenos there — read-only below, writable on top in dom0's memory). */
const DOM0_MODULES = [
  'xen-evtchn',
  'xen-gntdev',
  'xen-gntalloc',
  'xen-privcmd',
  'xenfs',
  'xen-blkback',
  'xen-netback',
  'bridge',
  'loop',
  'tun',
  'virtio_pci',
  'virtio_blk',
  'virtio_net',
  'ext4',
  'crc32c_generic',
  '9p',
  '9pnet_virtio',
  'overlay',
];
/** What the initramfs loads to reach the root disk. */
const INITRD_MODULES = ['virtio_pci', 'virtio_blk', 'ext4', 'crc32c_generic'];
const HOST_TOOLS = [
  'apt-get:apt',
  'dpkg-deb:dpkg',
  'debootstrap:debootstrap',
  'mke2fs:e2fsprogs',
  'cpio:cpio',
  'depmod:kmod',
];
const ROOTFS_SIZE = '1536M';
const INFO_FILE = 'xen-host.json';

export interface XenHostImage {
  dir: string;
  xen: string;
  kernel: string;
  initrd: string;
  rootfs: string;
  /** `xen-hypervisor-4.17-amd64 <version>, linux-image-… <version>`. */
  versions: string;
}

export function defaultXenHostDir(): string {
  return process.env.XENOS_XEN_HOST_DIR ?? join(HERE, '..', '..', 'build', 'xen-host');
}

function image(dir: string, versions: string): XenHostImage {
  const at = (f: string) => join(dir, f);
  return {
    dir,
    xen: at('xen.bin'),
    kernel: at('vmlinuz'),
    initrd: at('initrd.cpio.gz'),
    rootfs: at('rootfs.img'),
    versions,
  };
}

/** The Debian mirror apt uses here (debootstrap must fetch from it too: it may be the only one reachable). */
function debianMirror(): string {
  const files = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'];
  for (const f of files.filter(existsSync)) {
    const text = readFileSync(f, 'utf8');
    const uri =
      /^URIs:\s*(\S+\/debian)\s*$/m.exec(text)?.[1] ??
      /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\s+bookworm\b/m.exec(text)?.[1];
    if (uri) return uri;
  }
  return 'http://deb.debian.org/debian';
}

/** The Xen host image in `dir`, built first when missing or stale. */
export async function ensureXenHost(
  options: { dir?: string; log?: (line: string) => void } = {},
): Promise<XenHostImage> {
  const dir = options.dir ?? defaultXenHostDir();
  const log = options.log ?? (() => {});
  if (Number(process.versions.node.split('.')[0]) < 22)
    throw new BuildError(`dom0 gets this node (${process.version}); it must be 22 or later`);
  mkdirSync(dir, { recursive: true });
  const lock = await acquireBuildLock(`${dir}.lock`, 20 * 60_000, () =>
    log(`xen-host: waiting for another build of ${dir}`),
  );
  try {
    installHostPackages(HOST_TOOLS);
    const need = "the Xen host needs Debian 12's main archive";
    const found = requireCandidates([HYPERVISOR, KERNEL_META, BUSYBOX], need, (l) => log(`xen-host: ${l}`));
    const kernel = kernelOfMeta(found.get(KERNEL_META));
    const release = kernel.release;
    const versions = `${HYPERVISOR} ${found.get(HYPERVISOR)!.version}, ${kernel.package} ${kernel.version}`;
    const hash = createHash('sha256').update(
      `${versions}\n${found.get(BUSYBOX)!.version}\n${process.version}\n`,
    );
    for (const f of [fileURLToPath(import.meta.url), DOM0_INIT, KERNEL_MODULES_SOURCE])
      hash.update(readFileSync(f));
    const key = hash.digest('hex');
    const info = join(dir, INFO_FILE);
    if (existsSync(info) && (JSON.parse(readFileSync(info, 'utf8')) as { key?: string }).key === key)
      return image(dir, versions);

    log(`xen-host: building ${dir} (${versions}); debootstrap takes a minute or two`);
    const work = mkdtempSync(join(dirname(dir), '.xen-host-'));
    try {
      const debs = join(work, 'debs');
      mkdirSync(debs);
      const hv = join(work, 'hv');
      unpackPackage(downloadPackage(HYPERVISOR, found.get(HYPERVISOR)!.version, debs), hv);
      writeFileSync(join(work, 'xen.bin'), gunzipSync(readFileSync(join(hv, 'boot', 'xen-4.17-amd64.gz'))));
      const kt = join(work, 'kernel');
      unpackPackage(downloadPackage(kernel.package, kernel.version, debs), kt);
      run('depmod', ['-b', kt, release]);
      copyFileSync(join(kt, 'boot', `vmlinuz-${release}`), join(work, 'vmlinuz'));
      const bb = join(work, 'busybox');
      unpackPackage(downloadPackage(BUSYBOX, found.get(BUSYBOX)!.version, debs), bb);

      const parts = {
        work,
        modules: join(kt, 'lib', 'modules', release),
        release,
        busybox: join(bb, 'bin', 'busybox'),
      };
      buildRootfs(parts);
      buildInitrd(parts);
      for (const f of ['xen.bin', 'vmlinuz', 'initrd.cpio.gz', 'rootfs.img'])
        renameSync(join(work, f), join(dir, f));
      writeFileSync(info, `${JSON.stringify({ key, versions }, null, 2)}\n`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    return image(dir, versions);
  } finally {
    lock.release();
  }
}

interface Parts {
  work: string;
  /** The kernel package's lib/modules/RELEASE, with its modules.dep. */
  modules: string;
  release: string;
  /** busybox-static's binary. */
  busybox: string;
}

/** rootfs.img: debootstrap's dom0 with the modules it loads, node, and dom0-init.sh as its init. */
function buildRootfs(p: Parts): void {
  const rootfs = join(p.work, 'rootfs');
  const include = `--include=${DOM0_PACKAGES.join(',')}`;
  run('nice', ['-n', '10', 'debootstrap', '--variant=minbase', include, 'bookworm', rootfs, debianMirror()], {
    timeoutMs: 20 * 60_000,
  });
  const dom0Modules = join(rootfs, 'lib', 'modules', p.release);
  copyModuleClosure(p.modules, dom0Modules, DOM0_MODULES);
  for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) {
    copyFileSync(join(p.modules, f), join(dom0Modules, f));
  }
  run('chroot', [rootfs, 'depmod', p.release]);
  copyFileSync(process.execPath, join(rootfs, 'usr', 'local', 'bin', 'node'));
  chmodSync(join(rootfs, 'usr', 'local', 'bin', 'node'), 0o755);
  copyFileSync(DOM0_INIT, join(rootfs, 'sbin', 'xenos-init'));
  chmodSync(join(rootfs, 'sbin', 'xenos-init'), 0o755);
  for (const d of [
    'var/log/xen/console',
    'var/lib/xen',
    'var/lib/xenstored',
    'test',
    'xenos',
    'xenos-share',
  ]) {
    mkdirSync(join(rootfs, d), { recursive: true });
  }
  const image = join(p.work, 'rootfs.img');
  run('mke2fs', ['-q', '-t', 'ext4', '-d', rootfs, '-L', 'dom0root', image, ROOTFS_SIZE], {
    timeoutMs: 10 * 60_000,
  });
}

/** initrd.cpio.gz: busybox and the modules that reach the root disk; its init switches to dom0's. */
function buildInitrd(p: Parts): void {
  const initrd = join(p.work, 'initrd');
  for (const d of ['bin', 'dev', 'proc', 'sys', 'newroot']) mkdirSync(join(initrd, d), { recursive: true });
  copyFileSync(p.busybox, join(initrd, 'bin', 'busybox'));
  // busybox's modprobe loads them, dependencies first, from the modules.dep its depmod writes.
  copyModuleClosure(p.modules, join(initrd, 'lib', 'modules', p.release), INITRD_MODULES);
  run(p.busybox, ['depmod', '-b', initrd, p.release]);
  writeFileSync(join(initrd, 'init'), INITRD_INIT, { mode: 0o755 });
  const list = run('find', ['.'], { cwd: initrd }).split('\n').filter(Boolean).sort().join('\n');
  const cpio = runBytes('cpio', ['-o', '-H', 'newc', '--quiet', '--reproducible'], {
    cwd: initrd,
    input: `${list}\n`,
  });
  writeFileSync(join(p.work, 'initrd.cpio'), cpio);
  run('gzip', ['-1', '-n', join(p.work, 'initrd.cpio')]);
}

/** The initramfs's init: the modules, the root disk (vda), then dom0's own init on it. */
const INITRD_INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
modprobe -a ${INITRD_MODULES.join(' ')}
i=0
until [ -b /dev/vda ]; do
  i=$((i + 1)); [ $i -gt 500 ] && { echo "XENOS-TEST: FAIL no root disk /dev/vda"; poweroff -f; }
  usleep 10000
done
mount -t ext4 /dev/vda /newroot || { echo "XENOS-TEST: FAIL cannot mount /dev/vda"; poweroff -f; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/xenos-init
`;
