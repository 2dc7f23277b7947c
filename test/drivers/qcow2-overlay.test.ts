// qcow2 overlays with the real qemu-img (and qemu-io to write as a guest would): an overlay reads the base
// through, keeps its own writes, leaves the base byte for byte as it was, two overlays of one base are
// independent, removing one leaves the base and the other; the base's format is never probed, and a qcow2
// base with a backing file of its own is refused; an overlay another host sent is made this host's (its
// backing file this host's base, whatever the sender's header said; not qcow2, or an external data file:
// refused).

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskImageError } from '../../src/drivers/errors.ts';
import {
  adoptReceivedOverlay,
  createQcow2Overlay,
  detectBaseFormat,
  diskInfo,
  removeQcow2Overlay,
} from '../../src/drivers/qcow2-overlay.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;

async function sha(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** Writes `pattern` (a byte) at `offset` of a qcow2 disk, as a guest would. */
async function write(disk: string, pattern: number, offset: string): Promise<void> {
  await run('qemu-io', ['-f', 'qcow2', '-c', `write -P ${pattern} ${offset} 64k`, disk]);
}

/** Whether the 64 KiB at `offset` of a qcow2 disk all hold `pattern`. */
async function holds(disk: string, pattern: number, offset: string): Promise<boolean> {
  try {
    const { stdout } = await run('qemu-io', ['-f', 'qcow2', '-c', `read -P ${pattern} ${offset} 64k`, disk]);
    return !/Pattern verification failed/.test(stdout);
  } catch (err) {
    if (/Pattern verification failed/.test(String((err as { stdout?: string }).stdout))) return false;
    throw err;
  }
}

describe('qcow2 overlays', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xenos-qcow2-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  async function rawBase(): Promise<string> {
    const base = join(dir, 'base.raw');
    await writeFile(base, Buffer.alloc(4 * MiB, 0x5a));
    return base;
  }

  it('reads the base through, keeps its own writes and never touches the base', async () => {
    const base = await rawBase();
    const before = await sha(base);
    const a = join(dir, 'a.qcow2');
    const b = join(dir, 'b.qcow2');
    const report = await createQcow2Overlay(base, a);
    await createQcow2Overlay(base, b, { format: 'raw' });
    expect(report.mode).toBe('Qcow2Overlay');
    expect(await diskInfo(a, 'qcow2')).toMatchObject({
      format: 'qcow2',
      virtualSize: 4 * MiB,
      backingFile: base,
      backingFormat: 'raw',
    });

    expect(await holds(a, 0x5a, '0')).toBe(true); // the base, read through
    await write(a, 0xab, '0');
    expect(await holds(a, 0xab, '0')).toBe(true);
    expect(await holds(a, 0x5a, '0')).toBe(false);
    expect(await holds(a, 0x5a, '1M')).toBe(true);
    // The other overlay still reads the base where a wrote.
    expect(await holds(b, 0x5a, '0')).toBe(true);
    expect(await holds(b, 0xab, '0')).toBe(false);
    expect(await sha(base)).toBe(before);
    // The overlay holds its writes, not the base.
    expect((await stat(a)).size).toBeLessThan(2 * MiB);

    await removeQcow2Overlay(a);
    await expect(stat(a)).rejects.toThrow();
    expect(await sha(base)).toBe(before);
    expect(await holds(b, 0x5a, '0')).toBe(true);
  });

  it('takes the format it is given, never a probe of the base', async () => {
    // A raw image whose first bytes are a qcow2 magic: read as raw when the template says raw.
    const base = join(dir, 'tricky.raw');
    const bytes = Buffer.alloc(MiB, 0);
    bytes.write('QFI\xfb', 0, 'latin1');
    await writeFile(base, bytes);
    expect(await detectBaseFormat(base)).toBe('qcow2');
    await expect(createQcow2Overlay(base, join(dir, 'x.qcow2'))).rejects.toBeInstanceOf(DiskImageError);
    const o = join(dir, 'y.qcow2');
    await createQcow2Overlay(base, o, { format: 'raw' });
    expect((await diskInfo(o, 'qcow2')).backingFormat).toBe('raw');
  });

  it('refuses a qcow2 base that has a backing file of its own', async () => {
    const secret = join(dir, 'host-secret.raw');
    await writeFile(secret, Buffer.alloc(MiB, 1));
    const base = join(dir, 'base.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', secret, '-F', 'raw', base]);
    const err = await createQcow2Overlay(base, join(dir, 'o.qcow2')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiskImageError);
    expect((err as Error).message).toMatch(/backing file of its own .*host-secret\.raw.*flatten/);
    await expect(stat(join(dir, 'o.qcow2'))).rejects.toThrow();
  });

  it('says what to install when qemu-img is missing', async () => {
    const base = await rawBase();
    const err = await createQcow2Overlay(base, join(dir, 'o.qcow2'), {
      qemuImg: '/nonexistent/qemu-img',
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/qemu-utils/);
  });

  it('makes an overlay another host sent back onto this host’s base, keeping its writes', async () => {
    const base = await rawBase();
    const mine = join(dir, 'mine.qcow2');
    await createQcow2Overlay(base, mine);
    // The sender's header names a file of its choosing as the backing (here a "secret" of this host).
    const secret = join(dir, 'host-secret.raw');
    await writeFile(secret, Buffer.alloc(4 * MiB, 0x11));
    const received = join(dir, 'received.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', secret, '-F', 'raw', received]);
    await write(received, 0xab, '0');
    await adoptReceivedOverlay(received, mine);
    expect(await diskInfo(received, 'qcow2')).toMatchObject({ backingFile: base, backingFormat: 'raw' });
    expect(await holds(received, 0xab, '0')).toBe(true); // its own writes kept
    expect(await holds(received, 0x5a, '1M')).toBe(true); // the rest read from this host's base
  });

  it('refuses a sent overlay that is not qcow2 or names an external data file', async () => {
    const base = await rawBase();
    const mine = join(dir, 'mine.qcow2');
    await createQcow2Overlay(base, mine);
    const raw = join(dir, 'raw.img');
    await writeFile(raw, Buffer.alloc(MiB));
    await expect(adoptReceivedOverlay(raw, mine)).rejects.toThrow(/not a qcow2 file/);
    const withData = join(dir, 'data.qcow2');
    await run('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-o',
      `data_file=${join(dir, 'elsewhere.raw')}`,
      withData,
      '1M',
    ]);
    await expect(adoptReceivedOverlay(withData, mine)).rejects.toThrow(/external data file .*elsewhere\.raw/);
  });
});
