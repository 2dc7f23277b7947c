// Copy-on-write disks for VM drivers (QEMU, Xen's qdisk): a domain's disk is a qcow2 file of its own,
// backed by the template image read-only (`qemu-img create -f qcow2 -b BASE -F FORMAT`): it holds only the
// clusters the guest writes; the base, shared by every domain of the template on the host, is never
// written. Deleting the domain deletes its overlay alone. The base's format is always given (`-F`), never
// probed: a raw image whose first bytes look like a qcow2 header could otherwise make QEMU open a file the
// header names. For the same reason a qcow2 base that has a backing file of its own is refused: a template
// could name any host file (/etc/shadow) as its backing file and the guest would read it.

import { execFile } from 'node:child_process';
import { open, rename, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { DiskReport } from './driver.ts';
import { DiskImageError } from './errors.ts';

const run = promisify(execFile);

export type BaseFormat = 'raw' | 'qcow2';

export interface QemuImgOptions {
  /** The qemu-img binary. Default `qemu-img` (on PATH; Debian package qemu-utils). */
  qemuImg?: string;
  /** How long one qemu-img run may take. Default 60 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** What `qemu-img info` says of one image (the fields this module reads). */
export interface DiskInfo {
  format: string;
  virtualSize: number;
  /** Bytes the file takes on disk. */
  actualSize?: number;
  backingFile?: string;
  backingFormat?: string;
}

const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]); // "QFI\xfb"

/** The format of an image file by its header: qcow2 by its magic, raw otherwise. */
export async function detectBaseFormat(path: string): Promise<BaseFormat> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    return bytesRead === 4 && head.equals(QCOW2_MAGIC) ? 'qcow2' : 'raw';
  } finally {
    await fh.close();
  }
}

/** `qemu-img info` of `path` read as `format` (never probed). */
export async function diskInfo(
  path: string,
  format: string,
  options: QemuImgOptions = {},
): Promise<DiskInfo> {
  const out = await qemuImg(['info', '--output=json', '-f', format, path], path, options);
  const j = JSON.parse(out) as Record<string, unknown>;
  return {
    format: String(j.format),
    virtualSize: Number(j['virtual-size']),
    actualSize: typeof j['actual-size'] === 'number' ? j['actual-size'] : undefined,
    backingFile: typeof j['backing-filename'] === 'string' ? j['backing-filename'] : undefined,
    backingFormat:
      typeof j['backing-filename-format'] === 'string' ? j['backing-filename-format'] : undefined,
  };
}

/**
 * Makes `overlay` a new qcow2 disk backed by `base` (read-only), replacing any file there; built beside it
 * and renamed, so a half-made overlay is never taken for a finished one. `format` is the base's format
 * (detected from its header when not given). Returns what the instance's status.disk says.
 */
export async function createQcow2Overlay(
  base: string,
  overlay: string,
  options: QemuImgOptions & { format?: BaseFormat } = {},
): Promise<DiskReport> {
  const format = options.format ?? (await detectBaseFormat(base).catch((err) => fail(base, err)));
  const info = await diskInfo(base, format, options);
  if (info.backingFile !== undefined) {
    throw new DiskImageError(
      base,
      `it is a qcow2 image with a backing file of its own (${info.backingFile}); flatten it first (qemu-img convert -O qcow2)`,
    );
  }
  const partial = `${overlay}.partial`;
  await rm(partial, { force: true });
  try {
    await qemuImg(['create', '-q', '-f', 'qcow2', '-b', base, '-F', format, partial], base, options);
    await rename(partial, overlay);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  return {
    mode: 'Qcow2Overlay',
    message: `a qcow2 overlay backed by ${base} (${format}, read-only): it holds only what the guest writes`,
  };
}

/**
 * Makes `received` — an overlay another host sent in a migration — one of this host's: it must be a qcow2
 * file with no external data file, and its backing file becomes the one of `mine` (this host's own fresh
 * overlay for the same disk) whatever the sender's header named (`qemu-img rebase -u`: the header alone is
 * rewritten). A backend that follows the header (Xen's qdisk, root in dom0) then opens this host's base,
 * never a host file a peer chose, and the disk works where the hosts' data directories differ.
 */
export async function adoptReceivedOverlay(
  received: string,
  mine: string,
  options: QemuImgOptions = {},
): Promise<void> {
  if ((await detectBaseFormat(received).catch((err) => fail(received, err))) !== 'qcow2')
    throw new DiskImageError(received, 'the overlay the source sent is not a qcow2 file');
  const out = await qemuImg(['info', '--output=json', '-f', 'qcow2', received], received, options);
  const data = (JSON.parse(out) as { 'format-specific'?: { data?: Record<string, unknown> } })[
    'format-specific'
  ]?.data;
  if (data?.['data-file'] !== undefined)
    throw new DiskImageError(
      received,
      `the overlay the source sent names an external data file (${data['data-file']})`,
    );
  const own = await diskInfo(mine, 'qcow2', options);
  const backing = own.backingFile ? ['-b', own.backingFile, '-F', own.backingFormat ?? 'raw'] : ['-b', ''];
  await qemuImg(['rebase', '-u', '-f', 'qcow2', ...backing, received], received, options);
}

/** Deletes a domain's overlay: its own writes only, never the base. */
export async function removeQcow2Overlay(overlay: string): Promise<void> {
  await rm(overlay, { force: true });
  await rm(`${overlay}.partial`, { force: true });
}

async function qemuImg(args: string[], about: string, options: QemuImgOptions): Promise<string> {
  const bin = options.qemuImg ?? 'qemu-img';
  try {
    const { stdout } = await run(bin, args, {
      timeout: options.timeoutMs ?? 60_000,
      signal: options.signal,
      maxBuffer: 4 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    if (options.signal?.aborted) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DiskImageError(about, `${bin} is not installed (Debian package qemu-utils; npm run setup)`);
    }
    return fail(about, err);
  }
}

function fail(path: string, err: unknown): never {
  const e = err as { stderr?: string; message?: string };
  const detail = (e.stderr || e.message || String(err)).trim().split('\n')[0];
  throw new DiskImageError(path, detail, { cause: err });
}
