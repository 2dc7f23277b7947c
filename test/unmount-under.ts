// Test helper: unmounts whatever is mounted under a directory (the overlays of process-driver domains, when
// the tests run as root) so that removing a test's data dir never fails with EBUSY nor leaves a mount
// behind, even when the test ended without destroying its domains (a killed xenosd, a crash trial).

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** The mount points at or under `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const root = resolve(dir);
  let info = '';
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  return info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter(Boolean)
    .map((p) => p.replace(/\\(\d{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8))))
    .filter((p) => p === root || p.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
}

export function unmountUnder(dir: string): void {
  for (const mount of mountsUnder(dir)) {
    try {
      execFileSync('umount', ['--lazy', mount], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // Not ours to unmount (not root), or gone already: the removal that follows says what is left.
    }
  }
}
