// Kernel modules for the images the builders under scripts/ make (the demo guest's initramfs, the test Xen
// host's dom0): which module files loading some modules needs, from the kernel's modules.dep, and copying
// them with their place under lib/modules/VERSION kept.

import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BuildError } from './build-error.ts';

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

/** Copies what loading `wanted` needs from one lib/modules/VERSION directory (with its modules.dep) to
 *  another; returns the files copied, relative to them. */
export function copyModuleClosure(fromDir: string, toDir: string, wanted: string[]): string[] {
  const files = moduleClosure(readFileSync(join(fromDir, 'modules.dep'), 'utf8'), wanted);
  for (const file of files) {
    mkdirSync(dirname(join(toDir, file)), { recursive: true });
    copyFileSync(join(fromDir, file), join(toDir, file));
  }
  return files;
}
