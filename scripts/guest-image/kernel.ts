// The guest's kernel, taken apart: the uncompressed kernel inside Debian's bzImage, and the modules the
// guest needs with everything they depend on.
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

/** A module's name as modprobe knows it: the file name without `.ko`, dashes as underscores. */
export function moduleName(path: string): string {
  return path
    .replace(/^.*\//, '')
    .replace(/\.ko(\.\w+)?$/, '')
    .replace(/-/g, '_');
}

/**
 * The module files (paths relative to /lib/modules/VERSION) that loading `wanted` needs, from a
 * modules.dep: each wanted module and everything it depends on, transitively. Throws naming a wanted
 * module the kernel does not have as a module.
 */
export function moduleClosure(modulesDep: string, wanted: string[]): string[] {
  const deps = new Map<string, { path: string; needs: string[] }>();
  for (const line of modulesDep.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    const needs = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    deps.set(moduleName(path), { path, needs });
  }
  const files = new Set<string>();
  const visit = (name: string, neededBy?: string): void => {
    const entry = deps.get(name);
    if (!entry) {
      throw new BuildError(
        `kernel module ${name}${neededBy ? ` (needed by ${neededBy})` : ''} is not in modules.dep`,
      );
    }
    if (files.has(entry.path)) return;
    files.add(entry.path);
    for (const dep of entry.needs) visit(moduleName(dep), name);
  };
  for (const name of wanted) visit(name.replace(/-/g, '_'));
  return [...files].sort();
}
