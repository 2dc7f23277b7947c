// Which code xenosd and xenosctl run: the build in dist/ (plain JavaScript, made by `npm run build`,
// which `npm install` runs) while it is current, otherwise the TypeScript sources, which Node runs by
// stripping their types. The build spares each process the type stripper, which stays loaded once used
// (about 30 MB of resident memory, measured by bench/host-footprint.ts), and the transform at every start.
// Current means built after the last change to any file or folder under src/ or controllers/
// (dist/BUILT's time is when its build started), so an edited checkout never runs stale code.
// XENOS_CODE=sources or XENOS_CODE=dist chooses by hand.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE_DIRS = ['src', 'controllers'];

function newestSourceMs(root) {
  let newest = 0;
  for (const dir of SOURCE_DIRS) {
    const top = join(root, dir);
    if (!existsSync(top)) continue;
    // Folders too: a folder's time changes when a file in it is added, removed or renamed.
    newest = Math.max(newest, statSync(top).mtimeMs);
    for (const e of readdirSync(top, { withFileTypes: true, recursive: true })) {
      newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
    }
  }
  return newest;
}

/** True when `root`/dist was built after the last change to its sources. */
export function distIsCurrent(root = ROOT) {
  const stamp = join(root, 'dist', 'BUILT');
  return existsSync(stamp) && statSync(stamp).mtimeMs > newestSourceMs(root);
}

const chosen = new Map();

/** The URL to import for `source`, a path like 'src/daemon/main.ts' under `root` (the package's). */
export function codeFile(source, { root = ROOT, env = process.env } = {}) {
  if (!chosen.has(root)) {
    chosen.set(root, env.XENOS_CODE === 'dist' || (env.XENOS_CODE !== 'sources' && distIsCurrent(root)));
  }
  const path = chosen.get(root) ? join(root, 'dist', source.replace(/\.ts$/, '.js')) : join(root, source);
  return pathToFileURL(path).href;
}
