// The files of a VM migration that moves files (QEMU's cold move: the disk overlays; Xen's save and
// restore: the overlays and the checkpoint): sent one per labelled stream of the migration transport, in
// order, with progress; received into `<target>.incoming` and renamed into place only once whole, so a
// broken stream never leaves a half file where the domain would use it.

import { createReadStream, createWriteStream } from 'node:fs';
import { chown, rename, stat } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { MigrateOutOptions, MigrationTransport } from './driver.ts';
import type { DiskShape } from './migration-control.ts';
import { diskInfo } from './qcow2-overlay.ts';

/** The shapes of a domain's disks for the source's hello: each file's guest-visible size. */
export async function overlayShapes(
  disks: { name: string; readOnly: boolean; path: string }[],
  signal?: AbortSignal,
): Promise<DiskShape[]> {
  const shapes = [];
  for (const d of disks) {
    const info = await diskInfo(d.path, 'qcow2', { signal });
    shapes.push({ name: d.name, readOnly: d.readOnly, virtualSize: info.virtualSize });
  }
  return shapes;
}

/** Sends each file on a stream of its label; returns the bytes sent. */
export async function sendFiles(
  transport: MigrationTransport,
  files: { label: string; path: string }[],
  options: Pick<MigrateOutOptions, 'signal' | 'onProgress'> = {},
): Promise<number> {
  const { signal } = options;
  const total = (await Promise.all(files.map((f) => stat(f.path)))).reduce((n, s) => n + s.size, 0);
  let sent = 0;
  for (const f of files) {
    const stream = await transport.open(f.label, { signal });
    const file = createReadStream(f.path);
    file.on('data', (chunk) => {
      sent += chunk.length;
      options.onProgress?.({ stage: 'files', bytesTransferred: sent, bytesTotal: total });
    });
    await pipeline(file, stream, { signal });
  }
  return sent;
}

/** Writes the stream to `target` (0600, given to `owner` when set) once it has all of it and `check`
 *  (given the whole file before it takes the target's place) passed. */
export async function receiveFile(
  stream: Duplex,
  target: string,
  options: {
    signal?: AbortSignal;
    owner?: { uid: number; gid: number };
    check?(incoming: string): Promise<void>;
  } = {},
): Promise<void> {
  const incoming = `${target}.incoming`;
  await pipeline(stream, createWriteStream(incoming, { mode: 0o600 }), { signal: options.signal });
  if (options.owner) await chown(incoming, options.owner.uid, options.owner.gid);
  await options.check?.(incoming);
  await rename(incoming, target);
}
