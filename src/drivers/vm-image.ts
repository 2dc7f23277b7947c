// Which files of a template image a VM guest (QEMU or Xen) uses — the directory-image rule: a directory
// image holds the kernel and initrd the template names (`boot.kernel: vmlinuz`, relative to it) and its
// disk, the first of disk.qcow2, disk.raw, disk.img at its top; a file image is itself the disk.

import { stat } from 'node:fs/promises';
import { isAbsolute, join, normalize } from 'node:path';
import { parseMemoryQuantity } from '../model/quantity.ts';
import type { DiskSpec } from '../model/service-template.ts';
import type { DomainSpec } from './driver.ts';
import { InvalidDomainSpecError } from './errors.ts';
import type { BaseFormat } from './qcow2-overlay.ts';

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

const DISK_NAME = /^[a-z0-9][a-z0-9-]{0,30}$/;

/** One disk of a guest as the template asks for it, checked; the driver picks the bus it is on. */
export interface PlannedDisk {
  name: string;
  /** As the template says (absent: the driver's own). */
  bus?: DiskSpec['bus'];
  readOnly: boolean;
  /** `image` disks: the image's disk below the domain's overlay (its format read from its header later). */
  base?: { relative: string; format: BaseFormat };
  /** `empty` disks: the size of the new disk. */
  sizeBytes?: number;
}

/** The disks a spec asks for — no disks listed means one `root` disk from the image when it has a disk —
 *  checked: names, sources and sizes (a located InvalidDomainSpecError otherwise). */
export function planDisks(spec: DomainSpec, image: VmImage): PlannedDisk[] {
  const listed = spec.disks?.length
    ? spec.disks
    : image.disk
      ? [{ name: 'root', source: 'image' as const }]
      : [];
  const seen = new Set<string>();
  return listed.map((d, i) => {
    const field = `spec.domain.disks[${i}]`;
    if (!DISK_NAME.test(d.name)) {
      throw new InvalidDomainSpecError(spec.id, `name "${d.name}" must match ${DISK_NAME}`, `${field}.name`);
    }
    if (seen.has(d.name)) {
      throw new InvalidDomainSpecError(spec.id, `disk "${d.name}" is listed twice`, `${field}.name`);
    }
    seen.add(d.name);
    const disk: PlannedDisk = { name: d.name, readOnly: d.readOnly ?? false };
    if (d.bus) disk.bus = d.bus;
    if (d.source === 'image') {
      if (!image.disk) {
        throw new InvalidDomainSpecError(
          spec.id,
          `the image (${spec.image.path}) has no disk (a directory image needs disk.qcow2, disk.raw or disk.img)`,
          `${field}.source`,
        );
      }
      disk.base = { relative: image.disk.relative, format: 'raw' };
    } else {
      const size = d.size === undefined ? undefined : parseMemoryQuantity(d.size);
      if (!size) {
        throw new InvalidDomainSpecError(spec.id, 'an empty disk needs a size such as 1Gi', `${field}.size`);
      }
      disk.sizeBytes = size;
    }
    return disk;
  });
}
