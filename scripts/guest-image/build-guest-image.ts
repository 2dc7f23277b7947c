// `npm run guest-image [-- --force]`: builds the demo guest into build/guest (or $XENOS_GUEST_DIR) when its
// inputs changed, and prints the image directory. See README.md beside this file.

import { BuildError } from '../lib/build-error.ts';
import { defaultGuestDir, ensureGuestImage } from './guest-image.ts';

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--force');
if (unknown.length > 0) {
  console.error(`guest-image: unknown argument ${unknown[0]}; usage: npm run guest-image [-- --force]`);
  process.exit(2);
}
const dir = defaultGuestDir();
try {
  const started = Date.now();
  const info = await ensureGuestImage({ dir, force: args.includes('--force'), log: (l) => console.error(l) });
  if (info.built) console.error(`guest-image: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  else console.error(`guest-image: ${dir} is up to date (${info.kernel}, ${info.busybox})`);
  console.log(dir);
} catch (err) {
  if (!(err instanceof BuildError)) throw err;
  console.error(`guest-image: ${err.message}`);
  process.exit(1);
}
