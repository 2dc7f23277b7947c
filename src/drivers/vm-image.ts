// Which files of a template image a VM guest (QEMU or Xen) uses — the directory-image rule: a directory
// image holds the kernel and initrd the template names (`boot.kernel: vmlinuz`, relative to it) and its
// disk, the first of disk.qcow2, disk.raw, disk.img at its top; a file image is itself the disk.

import { stat } from 'node:fs/promises';
import { isAbsolute, join, normalize } from 'node:path';
import type { DomainSpec } from './driver.ts';
import { InvalidDomainSpecError } from './errors.ts';

/** The names a directory image's disk may have, in the order they are looked for. */
export const IMAGE_DISK_NAMES = ['disk.qcow2', 'disk.raw', 'disk.img'];

/** The files of a template image a guest uses: host paths, and paths relative to the image ('' when the
 *  image is the file itself). */
export interface VmImage {
  /** The image: its directory, or the disk file itself (what QEMU's sandbox binds at /image). */
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
