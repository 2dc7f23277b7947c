// The directory of a guest's QMP socket, made so that a QEMU taken over by its guest cannot redirect
// xenosd's monitor connection. QEMU (the domain's uid) must create its socket in a directory it can write;
// xenosd (root) connects to that path, and connecting follows a symlink — so a compromised QEMU could
// replace its socket with a link to another guest's monitor and have xenosd power that one off or migrate
// it. So QEMU gets vm/monitor/ to itself only until its socket exists (it makes it at startup, before the
// guest runs a single instruction); then the driver checks it is a socket of the domain's uid and gives the
// directory to root, read-only for the domain: the socket can no longer be moved, replaced or linked.
// Without root (user-namespace sandboxes) QEMU runs as xenosd's own uid and there is nothing to seal.

import { chmod, chown, lstat, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Identity } from '../sandbox/bwrap-plan.ts';
import { QmpConnectionError } from './errors.ts';

/** Before a start: an empty monitor directory QEMU (the domain's uid) can create its socket in. */
export async function openMonitorDir(socketPath: string, identity: Identity | undefined): Promise<void> {
  const dir = dirname(socketPath);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { mode: 0o700 });
  if (identity) await chown(dir, identity.uid, identity.gid);
}

/** Once QEMU has made its socket: checks it is a socket (not a link) of the domain's uid and gives the
 *  directory to root. True when sealed (or nothing to seal: no identity), false while there is no socket
 *  yet. Idempotent. */
export async function sealMonitorDir(
  socketPath: string,
  identity: Identity | undefined,
  domainId: string,
): Promise<boolean> {
  if (!identity) return true;
  const dir = dirname(socketPath);
  if ((await lstat(dir)).uid === 0) return true;
  const sock = await lstat(socketPath).catch(() => undefined);
  if (!sock) return false;
  if (!sock.isSocket() || sock.uid !== identity.uid) {
    throw new QmpConnectionError(
      socketPath,
      `is not a socket QEMU made (a ${sock.isSymbolicLink() ? 'symbolic link' : 'file'} of uid ${sock.uid}); not connecting`,
      domainId,
    );
  }
  await chown(dir, 0, 0);
  await chmod(dir, 0o755);
  return true;
}
