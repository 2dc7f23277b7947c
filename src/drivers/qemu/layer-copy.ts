// Failover copies of a QEMU guest's disks (Driver.copyLayer, DomainSpec.fromCopy). Each writable overlay
// is copied while the guest runs by one of QEMU's own backup jobs (blockdev-backup, sync top: only the
// clusters the overlay holds, each disk as it was at the job's start — what the guest had written, as
// after a power cut; what it still held in its page cache is not in it) into a new qcow2 beside it, and
// the copies go as one tar. A domain failing over is made fresh on this host's base, then its overlays are
// replaced by the copies, each adopted as a migration's overlay is (qcow2, no external data file, this
// host's base as its backing: adoptReceivedOverlay).

import { createReadStream } from 'node:fs';
import { chown, mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import type { LayerCopySource } from '../driver.ts';
import { DomainNotFoundError, DriverError } from '../errors.ts';
import { receiveDomainDir, sendDomainDir } from '../process/cold-migration.ts';
import { type DomainRecord, writeRecord } from '../process/domain-record.ts';
import { adoptReceivedOverlay } from '../qcow2-overlay.ts';
import { createEmptyDisk } from '../vm-disks.ts';
import type { LiveMigrationHost } from './live-migration.ts';
import type { VmPaths } from './vm-layout.ts';

/** How long one disk's backup job may take. */
const JOB_TIMEOUT_MS = 10 * 60_000;

interface BlockNode {
  'node-name': string;
  file: string;
  image: { 'virtual-size': number };
}

const copyName = (disk: string) => `${disk}.copy.qcow2`;

/** Writes the copies of guest `id`'s writable disks to `out` as one tar (and ends it). */
export async function copyVmLayer(
  host: Pick<LiveMigrationHost, 'paths' | 'readRecord' | 'qmp' | 'disksOf'>,
  id: string,
  out: Writable,
  signal?: AbortSignal,
): Promise<{ bytes: number }> {
  const rec = await host.readRecord(id);
  const paths = host.paths(id);
  if (!rec) throw new DomainNotFoundError(id, dirname(paths.dir));
  const disks = (await host.disksOf(rec.spec)).filter((d) => !d.readOnly);
  const qmp = await host.qmp(id, signal);
  const nodes = await qmp.execute<BlockNode[]>('query-named-block-nodes', undefined, { signal });
  const node = (name: string) => {
    const n = nodes.find((x) => x['node-name'] === name);
    if (!n) throw new DriverError('CopyFailed', `the guest has no block node ${name}`, id);
    return n;
  };
  const made: string[] = [];
  try {
    for (const d of disks) {
      const target = `copy-${d.name}`;
      const onHost = join(dirname(paths.disk(d.name)), copyName(d.name));
      // The path QEMU opens it by: beside the overlay as QEMU sees it (inside its sandbox, or not).
      const forQemu = join(dirname(node(`disk-${d.name}-file`).file), copyName(d.name));
      await rm(onHost, { force: true });
      await createEmptyDisk(onHost, node(`disk-${d.name}`).image['virtual-size'], signal);
      made.push(onHost);
      if (rec.identity) await chown(onHost, rec.identity.uid, rec.identity.gid);
      await qmp.execute(
        'blockdev-add',
        { driver: 'qcow2', 'node-name': target, file: { driver: 'file', filename: forQemu }, backing: null },
        { signal },
      );
      try {
        const done = qmp.waitForEvent('BLOCK_JOB_COMPLETED', {
          match: (e) => e.data?.device === target,
          signal,
          timeoutMs: JOB_TIMEOUT_MS,
        });
        await qmp.execute(
          'blockdev-backup',
          { 'job-id': target, device: `disk-${d.name}`, target, sync: 'top' },
          { signal },
        );
        const ended = await done;
        if (ended.data?.error)
          throw new DriverError('CopyFailed', `copying disk ${d.name}: ${String(ended.data.error)}`, id);
      } finally {
        await qmp.execute('blockdev-del', { 'node-name': target }).catch(() => {});
      }
    }
    const bytes = await sendDomainDir(dirname(made[0] ?? paths.disk('none')), out, signal, undefined, {
      members: made.map((f) => basename(f)),
    });
    return { bytes };
  } finally {
    for (const f of made) await rm(f, { force: true });
  }
}

/** Replaces the fresh overlays of `rec` (just prepared) by the copies in `copy`, and says so in its disk
 *  report; throws when the copy lacks a disk or holds a file that is not a plain qcow2 overlay. */
export async function installVmCopy(
  paths: VmPaths,
  rec: DomainRecord,
  disks: { name: string; readOnly: boolean }[],
  copy: LayerCopySource,
  signal?: AbortSignal,
): Promise<DomainRecord> {
  const staging = join(paths.vm, 'disks', '.from-copy');
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true, mode: 0o700 });
  try {
    await receiveDomainDir(createReadStream(copy.path), staging, signal);
    for (const d of disks.filter((x) => !x.readOnly)) {
      const got = join(staging, copyName(d.name));
      if (!(await stat(got).catch(() => undefined))?.isFile())
        throw new Error(`the copy holds no disk ${d.name}`);
      await adoptReceivedOverlay(got, paths.disk(d.name), { signal });
      if (rec.identity) await chown(got, rec.identity.uid, rec.identity.gid);
      await rename(got, paths.disk(d.name));
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  const done: DomainRecord = {
    ...rec,
    disk: {
      mode: rec.disk?.mode ?? 'Qcow2Overlay',
      message: `${rec.disk?.message ?? 'qcow2 overlays'}, holding the copy of its disks taken on host ${copy.host} at ${copy.takenAt}`,
      fromCopy: { host: copy.host, takenAt: copy.takenAt },
    },
  };
  await writeRecord(paths, done);
  return done;
}
