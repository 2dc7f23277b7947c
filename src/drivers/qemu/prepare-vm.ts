// Preparing a QEMU domain's files (`driver.prepare`, and the first half of every start): its record (the
// process driver's domain.json), its vm/ directory, and one qcow2 disk per `spec.disks` entry — an
// overlay on the image's disk for `image` disks (the image is never written), a fresh disk of `size` for
// `empty` ones; no disks listed means one `root` disk from the image when it has a disk. A no-op when the
// domain already holds this image's digest and its disks. As root the domain gets its own uid and vm/ is
// given to it: QEMU runs as that uid and may write nothing else.

import { execFile } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { DiskReport, DomainSpec } from '../driver.ts';
import { DiskImageError, InvalidDomainSpecError, PrepareError } from '../errors.ts';
import { type DomainRecord, readRecord, recordText, writeRecord } from '../process/domain-record.ts';
import { domainAlive } from '../process/domain-state.ts';
import { giveOwnUid, preparedRecord } from '../process/prepare-domain.ts';
import { createQcow2Overlay, detectBaseFormat } from '../qcow2-overlay.ts';
import type { Sandbox } from '../sandbox/sandbox.ts';
import { planDisks, resolveVmImage, type VmImage } from '../vm-image.ts';
import { sealMonitorDir } from './monitor-dir.ts';
import type { VmDisk } from './qemu-command.ts';
import type { VmPaths } from './vm-layout.ts';

const run = promisify(execFile);

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

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function createEmptyDisk(path: string, sizeBytes: number, signal?: AbortSignal): Promise<void> {
  try {
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', path, String(sizeBytes)], {
      timeout: 60_000,
      signal,
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    const e = err as { stderr?: string; message?: string };
    throw new DiskImageError(path, (e.stderr || e.message || String(err)).trim().split('\n')[0], {
      cause: err,
    });
  }
}

/** Makes the disks that do not exist yet; returns what status.disk says. */
async function makeDisks(
  paths: VmPaths,
  image: VmImage,
  disks: (VmDisk & { sizeBytes?: number })[],
  signal?: AbortSignal,
): Promise<DiskReport> {
  await mkdir(`${paths.vm}/disks`, { recursive: true, mode: 0o700 });
  for (const disk of disks) {
    const file = paths.disk(disk.name);
    if (await exists(file)) continue;
    if (disk.base && image.disk) await createQcow2Overlay(image.disk.host, file, { signal });
    else await createEmptyDisk(file, disk.sizeBytes ?? 0, signal);
  }
  const names = disks.map((d) => `${d.name}${d.base ? ' (overlay)' : ' (new)'}`).join(', ');
  return {
    mode: 'Qcow2Overlay',
    message: disks.length
      ? `qcow2 disks ${names}; an overlay holds only what the guest writes, over ${image.disk?.host ?? 'no image disk'} (read-only)`
      : 'no disks: the guest runs from its kernel and initrd alone',
  };
}

/** The base format of each image disk, read from the image's header (never from a template). */
export async function withBaseFormats(image: VmImage, disks: VmDisk[]): Promise<VmDisk[]> {
  if (!image.disk) return disks;
  const format = await detectBaseFormat(image.disk.host);
  return disks.map((d) => (d.base ? { ...d, base: { ...d.base, format } } : d));
}

export async function prepareVm(
  paths: VmPaths,
  spec: DomainSpec,
  sandbox: Sandbox | undefined,
  signal?: AbortSignal,
): Promise<DomainRecord> {
  const image = await resolveVmImage(spec);
  const disks = plannedDisks(spec, image);
  const digest = spec.image.digest ?? '';
  const existing = await readRecord(paths);
  const disksThere = (await Promise.all(disks.map((d) => exists(paths.disk(d.name))))).every(Boolean);
  if (existing && existing.preparedDigest === digest && (await exists(paths.vm))) {
    const stored = recordText(existing);
    existing.spec = spec;
    if (!disksThere) existing.disk = await makeDisks(paths, image, disks, signal);
    await ensureVmIdentity(existing, paths, !disksThere, sandbox);
    if (recordText(existing) !== stored) await writeRecord(paths, existing);
    return existing;
  }
  if (existing?.run && (await domainAlive(paths, existing.run))) {
    throw new PrepareError(
      spec.id,
      `it runs from image ${existing.preparedDigest || '(no digest)'} and the spec now asks for ${digest || '(no digest)'}; stop it before changing its image`,
    );
  }
  let disk: DiskReport;
  try {
    await mkdir(paths.vm, { recursive: true, mode: 0o700 });
    disk = await makeDisks(paths, image, disks, signal);
  } catch (err) {
    if (signal?.aborted || err instanceof InvalidDomainSpecError) throw err;
    throw new PrepareError(
      spec.id,
      `making its disks from image ${spec.image.path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const rec = preparedRecord(spec, digest, existing, disk);
  await ensureVmIdentity(rec, paths, true, sandbox);
  await writeRecord(paths, rec);
  return rec;
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
