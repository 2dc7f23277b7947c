// The guest's kernel, taken apart: the uncompressed kernel inside Debian's bzImage, and its config (the
// modules the guest needs are found by ../lib/kernel-modules.ts).
//
// Why uncompress: under TCG the guest decompresses an xz bzImage itself, slowly (about 4 s here, as long as
// the rest of the boot). QEMU boots the uncompressed ELF `vmlinux` directly through the kernel's PVH entry
// point (CONFIG_PVH), skipping both decompression and the real-mode setup.

import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { BuildError } from '../lib/build-error.ts';
import { runBytes } from '../lib/debian.ts';

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/**
 * The uncompressed kernel (an ELF) inside an x86 bzImage, found through the boot protocol's setup header:
 * the protected-mode code starts after (setup_sects + 1) sectors, and the compressed payload lies at
 * payload_offset (0x248) from there, payload_length (0x24c) bytes long (boot protocol 2.08 and later).
 */
export function uncompressKernel(bzImage: string): Buffer {
  const image = readFileSync(bzImage);
  if (image.length < 0x250 || image.toString('latin1', 0x202, 0x206) !== 'HdrS') {
    throw new BuildError(`${bzImage} is not an x86 bzImage (no HdrS setup header)`);
  }
  const setupSects = image[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + image.readUInt32LE(0x248);
  const payload = image.subarray(start, start + image.readUInt32LE(0x24c));
  let elf: Buffer;
  if (payload.subarray(0, XZ_MAGIC.length).equals(XZ_MAGIC)) {
    // Node has no xz; the payload is one xz stream followed by its 4-byte size, which xz reports as
    // trailing garbage when it checks: --single-stream stops after the stream.
    elf = runBytes('xz', ['--decompress', '--stdout', '--single-stream'], { input: payload });
  } else if (payload.subarray(0, 2).equals(GZIP_MAGIC)) {
    elf = gunzipSync(payload);
  } else {
    throw new BuildError(`${bzImage}: the kernel is compressed with neither xz nor gzip`);
  }
  if (!elf.subarray(0, 4).equals(ELF_MAGIC)) {
    throw new BuildError(`${bzImage}: the uncompressed payload is not an ELF kernel`);
  }
  return elf;
}

/** The kernel config's options set to `y` or `m` (from /boot/config-VERSION). */
export function kernelConfig(configFile: string): Map<string, string> {
  const options = new Map<string, string>();
  for (const line of readFileSync(configFile, 'utf8').split('\n')) {
    const m = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (m) options.set(m[1], m[2]);
  }
  return options;
}
