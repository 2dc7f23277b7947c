// `npm run build` (also run by `npm install`, as `prepare`): compiles src/ and controllers/ to plain
// JavaScript in dist/, which bin/xenosd.js and bin/xenosctl.js run while it is current (bin/code.js).
// Types are not this step's business (`npm run check` is): code with type errors is still built, as
// Node would still run its sources. dist/BUILT is written last, with the time the build started, so
// a source saved during the build leaves it stale; a failed build leaves no BUILT and the bins run the
// sources.

import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = `${root}dist`;
const started = new Date();
rmSync(dist, { recursive: true, force: true });
const tsc = `${root}node_modules/typescript/bin/tsc`;
const r = spawnSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`], { stdio: 'inherit' });
// tsc exits 2 when it found type errors and still wrote every file, 1 when it wrote nothing.
const emitted = (r.status === 0 || r.status === 2) && existsSync(`${dist}/src/daemon/main.js`);
if (!emitted) {
  rmSync(dist, { recursive: true, force: true });
  console.error(`build: tsc failed (exit ${r.status ?? r.signal}); xenosd and xenosctl will run the sources`);
  process.exit(1);
}
if (r.status === 2)
  console.error('build: built despite type errors (see above; `npm run check` fails on them)');
writeFileSync(`${dist}/BUILT`, `${started.toISOString()}\n`);
utimesSync(`${dist}/BUILT`, started, started);
console.log(`build: dist/ in ${((Date.now() - started.getTime()) / 1000).toFixed(1)} s`);
