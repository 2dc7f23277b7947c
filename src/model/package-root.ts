// Where Xenos is installed: the folder holding its package.json, beside crds/ and bin/. The same modules
// run from the TypeScript sources (src/) and from their build (dist/src/, what bin/ runs when it is
// current), at different depths, so files that ship beside the code are found from the root, not by
// counting `../` from a module.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir)
      throw new Error(`no package.json above ${from}: Xenos is not installed as a package`);
  }
}

/** The package's root folder (absolute). */
export const PACKAGE_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

/** An absolute path to a file or folder that ships with Xenos, e.g. `packageFile('crds')`. */
export function packageFile(...parts: string[]): string {
  return join(PACKAGE_ROOT, ...parts);
}
