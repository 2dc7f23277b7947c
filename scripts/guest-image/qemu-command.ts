// The plain QEMU command line that boots the demo guest without Xenos (its tests and its boot benchmark
// use it; README.md beside this file shows the same by hand): TCG, 128 MiB, one vCPU, the serial console to a file,
// the disk as a qcow2 overlay on virtio, user-mode networking with the guest's port 80 forwarded from a
// port on 127.0.0.1 (0: QEMU picks one; `info usernet` names it), pvpanic with panic=exit-failure, QMP.

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export interface PlainQemuOptions {
  image: string;
  /** `vmlinux` (PVH boot, the fast one) or `vmlinuz`. */
  kernel?: string;
  initrd?: string;
  cmdline: string;
  overlay: string;
  consoleFile: string;
  qmpSocket: string;
  /** The host port forwarded to the guest's port 80; 0 (default) lets QEMU pick. */
  httpPort?: number;
}

export function plainQemuArgs(o: PlainQemuOptions): string[] {
  return [
    ...['-accel', 'tcg', '-m', '128', '-smp', '1', '-nodefaults', '-no-user-config', '-display', 'none'],
    ...['-no-reboot', '-serial', `file:${o.consoleFile}`, '-qmp', `unix:${o.qmpSocket},server=on,wait=off`],
    ...['-kernel', join(o.image, o.kernel ?? 'vmlinux'), '-initrd', join(o.image, o.initrd ?? 'initrd.img')],
    ...['-append', o.cmdline],
    ...['-drive', `file=${o.overlay},if=virtio,format=qcow2`],
    ...['-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${o.httpPort ?? 0}-:80`],
    ...['-device', 'virtio-net-pci,netdev=net0', '-device', 'pvpanic', '-action', 'panic=exit-failure'],
  ];
}

/** Creates a qcow2 overlay whose backing file is the image's raw disk.img. */
export function createOverlay(image: string, path: string): string {
  execFileSync(
    'qemu-img',
    ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', join(image, 'disk.img'), path],
    {
      timeout: 30_000,
    },
  );
  return path;
}
