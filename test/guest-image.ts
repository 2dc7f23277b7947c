// The demo guest for tests: guestImageDir() returns the image directory that `npm run guest-image` makes
// (build/guest, or $XENOS_GUEST_DIR), building it first when it is missing or stale. The build runs in a
// child process (it takes about half a minute the first time, then a second to find the image up to
// date) once per test process; the builder's own lock makes test files that ask at once wait for one build.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { defaultGuestDir } from '../scripts/guest-image/guest-image.ts';

const BUILDER = join(import.meta.dirname, '..', 'scripts', 'guest-image', 'build-guest-image.ts');
/** A first build downloads ~70 MB of packages and compresses an initramfs; on a loaded machine it can be slow. */
export const GUEST_BUILD_TIMEOUT_MS = 10 * 60_000;

let pending: Promise<string> | undefined;

/** The guest image directory, built when missing or stale. */
export function guestImageDir(): Promise<string> {
  pending ??= buildOnce().catch((err) => {
    pending = undefined; // let a later call try again
    throw err;
  });
  return pending;
}

function buildOnce(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', BUILDER], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: GUEST_BUILD_TIMEOUT_MS,
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve(out.trim() || defaultGuestDir());
      else reject(new Error(`npm run guest-image failed (${signal ?? `exit ${code}`}):\n${err.trim()}`));
    });
  });
}
