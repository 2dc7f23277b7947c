// Where a QEMU domain's files are, on the host and inside its sandbox, and which files of the template
// image a guest boots from. A QEMU domain has the process driver's layout (domain.json, logs/, run/: see
// ../process/domain-record.ts) plus vm/, the one directory QEMU may write: its disks' overlays and its QMP
// socket. The image is shown to QEMU read-only at /image.
//
//   <dataDir>/domains/<id>/vm/               → /domain inside the sandbox, owned by the domain's uid
//                          vm/disks/<name>.qcow2   each disk: an overlay on the image's disk, or a new one
//                          vm/monitor/qmp.sock     QEMU's monitor (QEMU's cwd is vm/; the driver is its one client;
//                                                  the directory is root's once the socket exists: monitor-dir.ts)
//                          logs/stdout.log         the guest's serial console (QEMU's stdout), rotated
//                          logs/stderr.log         QEMU's own messages
//
// Which files of the image a guest uses: ../vm-image.ts.

import { join } from 'node:path';
import { DOMAIN_MOUNT, TOKEN_PATH } from '../sandbox/bwrap-plan.ts';
import { VmDomainPaths } from '../vm-disks.ts';
import type { VmImage } from '../vm-image.ts';

/** Where the template image appears inside a QEMU domain's sandbox (read-only). */
export const IMAGE_MOUNT = '/image';
/** vm/ is the directory QEMU may write, shown to it as /domain. */
export class VmPaths extends VmDomainPaths {
  /** In vm/monitor/, which QEMU may write only until it has made the socket (monitor-dir.ts). */
  get qmpSocket(): string {
    return join(this.dir, 'vm', 'monitor', 'qmp.sock');
  }
  /** The serial console: the supervisor pumps QEMU's stdout into this file. */
  get console(): string {
    return this.stdout;
  }
}

/** Where QEMU finds its files: inside the sandbox (/domain, /image, the token at TOKEN_PATH), or on the
 *  host when xenosd runs unsandboxed. */
export interface VmMounts {
  /** vm/ */
  domain: string;
  /** The image: its directory, or the disk file itself. */
  image: string;
  token: string;
}

export function sandboxMounts(): VmMounts {
  return { domain: DOMAIN_MOUNT, image: IMAGE_MOUNT, token: TOKEN_PATH };
}

export function hostMounts(paths: VmPaths, image: VmImage): VmMounts {
  return { domain: paths.vm, image: image.root, token: paths.tokenFile };
}

export const at = {
  disk: (m: VmMounts, name: string) => `${m.domain}/disks/${name}.qcow2`,
  image: (m: VmMounts, relative: string) => (relative ? `${m.image}/${relative}` : m.image),
};
