// Preparing a VM domain's files, the same for every VM driver (QEMU, Xen): its record (the process
// driver's domain.json), its vm/ directory, and one qcow2 disk per planned disk — an overlay on the image's
// disk for `image` disks (the image is never written), a fresh disk of `size` for `empty` ones. A no-op when
// the domain already holds this image's digest and its disks. Each driver plans the disks on its own buses
// and may give the files to the domain's own uid (`identity`).

import { execFile } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DiskReport, DomainSpec } from './driver.ts';
import { DiskImageError, InvalidDomainSpecError, PrepareError } from './errors.ts';
import {
  DomainPaths,
  type DomainRecord,
  readRecord,
  recordText,
  writeRecord,
} from './process/domain-record.ts';
import { preparedRecord, type RunAlive, refuseImageChangeWhileRunning } from './process/prepare-domain.ts';
import { createQcow2Overlay } from './qcow2-overlay.ts';
import { type PlannedDisk, resolveVmImage, type VmImage } from './vm-image.ts';

const run = promisify(execFile);

/** Where a VM domain's own files are, beside its record and logs: vm/, and a qcow2 file per disk in
 *  vm/disks/. Each VM driver's layout adds its own (QEMU's monitor socket, Xen's config). */
export class VmDomainPaths extends DomainPaths {
  get vm(): string {
    return join(this.dir, 'vm');
  }
  disk(name: string): string {
    return join(this.dir, 'vm', 'disks', `${name}.qcow2`);
  }
}

export interface PrepareVmOptions {
  /** The disks the spec asks for, checked, on the driver's buses. */
  plan(spec: DomainSpec, image: VmImage): PlannedDisk[];
  /** Gives the domain's files to its own uid when they are new (`fresh`) or its uid changed. */
  identity?(rec: DomainRecord, fresh: boolean): Promise<void>;
  /** Whether the recorded run still runs. Default: its supervisor process (QEMU's); Xen asks xl. */
  alive?: RunAlive;
  signal?: AbortSignal;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** A new empty qcow2 disk of `sizeBytes` (no backing file). */
export async function createEmptyDisk(path: string, sizeBytes: number, signal?: AbortSignal): Promise<void> {
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
  paths: VmDomainPaths,
  image: VmImage,
  disks: PlannedDisk[],
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

/** The domain's record and disks for `spec`, made or kept (see the top of this file). */
export async function prepareVmFiles(
  paths: VmDomainPaths,
  spec: DomainSpec,
  options: PrepareVmOptions,
): Promise<DomainRecord> {
  const { signal } = options;
  const identity = options.identity ?? (async () => {});
  const image = await resolveVmImage(spec);
  const disks = options.plan(spec, image);
  const digest = spec.image.digest ?? '';
  const existing = await readRecord(paths);
  const disksThere = (await Promise.all(disks.map((d) => exists(paths.disk(d.name))))).every(Boolean);
  if (existing && existing.preparedDigest === digest && (await exists(paths.vm))) {
    const stored = recordText(existing);
    existing.spec = spec;
    if (!disksThere) existing.disk = await makeDisks(paths, image, disks, signal);
    await identity(existing, !disksThere);
    if (recordText(existing) !== stored) await writeRecord(paths, existing);
    return existing;
  }
  await refuseImageChangeWhileRunning(paths, existing, spec, digest, options.alive);
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
  await identity(rec, true);
  await writeRecord(paths, rec);
  return rec;
}
