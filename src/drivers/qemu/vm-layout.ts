// Where a QEMU domain's files are, on the host and inside its sandbox, and which files of the template
// image a guest boots from. A QEMU domain has the process driver's layout (domain.json, logs/, run/: see
// ../process/domain-record.ts) plus vm/, the one directory QEMU may write: its disks' overlays and its QMP
// socket. The image is shown to QEMU read-only at /image.
//
//   <dataDir>/domains/<id>/vm/               → /domain inside the sandbox, owned by the domain's uid
//                          vm/disks/<name>.qcow2   each disk: an overlay on the image's disk, or a new one
//                          vm/monitor/qmp.sock     QEMU's monitor (QEMU's cwd is vm/; the driver is its one client;
//                                                  the directory is root's once the socket exists: monitor-dir.ts)
//                          logs/stdout.log         the guest's serial console (QEMU's stdout), rotated
//                          logs/stderr.log         QEMU's own messages
//
// The image (the directory-image rule): a directory image holds the kernel and initrd the template names
// (`boot.kernel: vmlinuz`, relative to it) and its disk, the first of disk.qcow2, disk.raw, disk.img at its
// top; a file image is itself the disk.

import { stat } from 'node:fs/promises';
import { isAbsolute, join, normalize } from 'node:path';
import type { DomainSpec } from '../driver.ts';
import { InvalidDomainSpecError } from '../errors.ts';
import { DomainPaths } from '../process/domain-record.ts';
import { DOMAIN_MOUNT, TOKEN_PATH } from '../sandbox/bwrap-plan.ts';

/** Where the template image appears inside a QEMU domain's sandbox (read-only). */
export const IMAGE_MOUNT = '/image';
/** The names a directory image's disk may have, in the order they are looked for. */
export const IMAGE_DISK_NAMES = ['disk.qcow2', 'disk.raw', 'disk.img'];

export class VmPaths extends DomainPaths {
  /** The directory QEMU may write, shown to it as /domain. */
  get vm(): string {
    return join(this.dir, 'vm');
  }
  disk(name: string): string {
    return join(this.dir, 'vm', 'disks', `${name}.qcow2`);
  }
  /** In vm/monitor/, which QEMU may write only until it has made the socket (monitor-dir.ts). */
  get qmpSocket(): string {
    return join(this.dir, 'vm', 'monitor', 'qmp.sock');
  }
  /** The serial console: the supervisor pumps QEMU's stdout into this file. */
  get console(): string {
    return this.stdout;
  }
}

/** Where QEMU finds its files: inside the sandbox (/domain, /image, the token at TOKEN_PATH), or on the
 *  host when xenosd runs unsandboxed. */
export interface VmMounts {
  /** vm/ */
  domain: string;
  /** The image: its directory, or the disk file itself. */
  image: string;
  token: string;
}

export function sandboxMounts(): VmMounts {
  return { domain: DOMAIN_MOUNT, image: IMAGE_MOUNT, token: TOKEN_PATH };
}

export function hostMounts(paths: VmPaths, image: VmImage): VmMounts {
  return { domain: paths.vm, image: image.root, token: paths.tokenFile };
}

export const at = {
  disk: (m: VmMounts, name: string) => `${m.domain}/disks/${name}.qcow2`,
  image: (m: VmMounts, relative: string) => (relative ? `${m.image}/${relative}` : m.image),
};

/** The files of a template image a guest uses: host paths, and paths relative to the image ('' when the
 *  image is the file itself). */
export interface VmImage {
  /** What is bound at /image: the image directory, or the disk file itself. */
  root: string;
  kernel?: { host: string; relative: string };
  initrd?: { host: string; relative: string };
  /** The base of `image` disks, when the image has one. */
  disk?: { host: string; relative: string };
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** Finds the kernel, initrd and disk of the spec's image; a located InvalidDomainSpecError for a missing
 *  one or a path that leaves the image. */
export async function resolveVmImage(spec: DomainSpec): Promise<VmImage> {
  const root = spec.image.path;
  const st = await stat(root).catch(() => undefined);
  if (!st) throw new InvalidDomainSpecError(spec.id, `${root} does not exist on this host`, 'image');
  if (st.isFile()) {
    if (spec.boot?.kernel || spec.boot?.initrd) {
      throw new InvalidDomainSpecError(
        spec.id,
        `the image is a single disk file (${root}); a kernel and initrd need a directory image that holds them`,
        'spec.domain.boot.kernel',
      );
    }
    return { root, disk: { host: root, relative: '' } };
  }
  const member = async (rel: string | undefined, field: string) => {
    if (!rel) return undefined;
    const clean = normalize(rel);
    if (isAbsolute(clean) || clean.startsWith('..')) {
      throw new InvalidDomainSpecError(spec.id, `${rel} must be a path inside the image directory`, field);
    }
    const host = join(root, clean);
    if (!(await isFile(host))) {
      throw new InvalidDomainSpecError(spec.id, `${rel} is not a file of the image (${root})`, field);
    }
    return { host, relative: clean };
  };
  const image: VmImage = { root };
  image.kernel = await member(spec.boot?.kernel, 'spec.domain.boot.kernel');
  image.initrd = await member(spec.boot?.initrd, 'spec.domain.boot.initrd');
  if (image.initrd && !image.kernel) {
    throw new InvalidDomainSpecError(spec.id, 'an initrd needs a kernel', 'spec.domain.boot.kernel');
  }
  for (const name of IMAGE_DISK_NAMES) {
    if (await isFile(join(root, name))) {
      image.disk = { host: join(root, name), relative: name };
      break;
    }
  }
  return image;
}
