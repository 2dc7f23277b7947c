// Preparing a QEMU domain's files (`driver.prepare`, and the first half of every start): its record (the
// process driver's domain.json), its vm/ directory, and one qcow2 disk per `spec.disks` entry — an
// overlay on the image's disk for `image` disks (the image is never written), a fresh disk of `size` for
// `empty` ones; no disks listed means one `root` disk from the image when it has a disk. A no-op when the
// domain already holds this image's digest and its disks. As root the domain gets its own uid and vm/ is
// given to it: QEMU runs as that uid and may write nothing else.

import type { DomainSpec } from '../driver.ts';
import { InvalidDomainSpecError } from '../errors.ts';
import type { DomainRecord } from '../process/domain-record.ts';
import { giveOwnUid } from '../process/prepare-domain.ts';
import { detectBaseFormat } from '../qcow2-overlay.ts';
import type { Sandbox } from '../sandbox/sandbox.ts';
import { prepareVmFiles } from '../vm-disks.ts';
import { planDisks, type VmImage } from '../vm-image.ts';
import { sealMonitorDir } from './monitor-dir.ts';
import type { VmDisk } from './qemu-command.ts';
import type { VmPaths } from './vm-layout.ts';

/** The disks a spec asks for, checked (vm-image.ts), on QEMU's buses: virtio unless ide is asked for. */
export function plannedDisks(spec: DomainSpec, image: VmImage): (VmDisk & { sizeBytes?: number })[] {
  return planDisks(spec, image).map(({ bus, ...disk }, i) => {
    if (bus === 'xvd') {
      throw new InvalidDomainSpecError(
        spec.id,
        'bus xvd is a Xen bus; QEMU has virtio and ide',
        `spec.domain.disks[${i}].bus`,
      );
    }
    return { ...disk, bus: bus ?? 'virtio' };
  });
}

/** The base format of each image disk, read from the image's header (never from a template). */
export async function withBaseFormats(image: VmImage, disks: VmDisk[]): Promise<VmDisk[]> {
  if (!image.disk) return disks;
  const format = await detectBaseFormat(image.disk.host);
  return disks.map((d) => (d.base ? { ...d, base: { ...d.base, format } } : d));
}

export function prepareVm(
  paths: VmPaths,
  spec: DomainSpec,
  sandbox: Sandbox | undefined,
  signal?: AbortSignal,
): Promise<DomainRecord> {
  return prepareVmFiles(paths, spec, {
    plan: plannedDisks,
    identity: (rec, fresh) => ensureVmIdentity(rec, paths, fresh, sandbox),
    signal,
  });
}

/** Gives the domain its own uid (root mode) and vm/ to it: when its files are new or its uid changed; a
 *  running QEMU's monitor directory stays root's (monitor-dir.ts). */
export function ensureVmIdentity(
  rec: DomainRecord,
  paths: VmPaths,
  fresh: boolean,
  sandbox: Sandbox | undefined,
): Promise<void> {
  return giveOwnUid(rec, paths.dir, paths.vm, fresh, sandbox, () =>
    sealMonitorDir(paths.qmpSocket, rec.identity, rec.spec.id).catch(() => {}),
  );
}
