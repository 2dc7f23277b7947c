// The xl domain config of one Xen guest, built from its spec: pure, so the same spec gives the same
// config on every host (a migration's destination, `xl migrate-receive`, rebuilds nothing from it, but a
// restarted xenosd compares it). What each line is for is in README.md beside this file; in short: the
// guest type (PVH when the template boots a kernel, HVM from its disk otherwise, PV when asked), memory
// fixed at what was asked (no ballooning), the kernel, initrd and command line (console on hvc0 for PV
// and PVH, ttyS0 for HVM: xenCmdline), each disk a qcow2 overlay or raw file on Xen's PV block (xvdX)
// or, for HVM only, emulated IDE (hdX), one vif with a MAC derived from the domain id, and a crashed guest kept
// (`on_crash = "preserve"`) so its state can be read before it is destroyed.
//
// Everything a template can put in it is checked here first, each error naming the template field, so
// xl never sees a config Xenos knows to be wrong; tests run the result through xl's own parser.

import { createHash } from 'node:crypto';
import type { DomainSpec } from '../driver.ts';
import { InvalidDomainSpecError } from '../errors.ts';
import { guestSize, kernelCmdline, macAddress } from '../vm-shape.ts';

export type XenType = 'pv' | 'pvh' | 'hvm';

/** Xen's own MAC prefix (00:16:3e), under which xl makes addresses too. */
export const XEN_OUI = '00:16:3e';
/** The bridge of `network.mode: user`: Xenos's own, NATed, with the guest ports forwarded to it. */
export const NAT_BRIDGE = 'xenosbr0';

/** One disk of the guest as prepared on this host. */
export interface XenDisk {
  /** The template's disk name (`root`). */
  name: string;
  /** Absolute path of the domain's file: a qcow2 overlay on the image, or a fresh qcow2/raw file. */
  path: string;
  format: 'qcow2' | 'raw';
  readOnly: boolean;
  /** As the template asked; absent = Xen's PV block. */
  bus?: 'virtio' | 'ide' | 'xvd';
}

export interface XlConfigInput {
  spec: DomainSpec;
  /** Absolute host paths of the kernel and initrd, when the guest boots one directly. */
  kernel?: string;
  ramdisk?: string;
  disks: XenDisk[];
  /** Allocated host port by template port name (for `${port.X}` in the command line). */
  ports: Record<string, number>;
}

/** The guest type: the template's `boot.xenType`, else PVH with a kernel and HVM without. */
export function xenTypeOf(spec: DomainSpec): XenType {
  return spec.boot?.xenType ?? (spec.boot?.kernel ? 'pvh' : 'hvm');
}

/** A value as an xl config string: double-quoted, `\` and `"` escaped. Control characters (a newline
 *  would end the setting) are refused, naming the field. */
export function xlString(value: string, spec: DomainSpec, field: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused here
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new InvalidDomainSpecError(spec.id, 'control characters cannot go into an xl config', field);
  }
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** A stable UUID for the domain: the instance's uid when it is one, else one derived from the domain id. */
export function domainUuid(spec: DomainSpec): string {
  const uid = spec.instance.uid.toLowerCase();
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uid)) return uid;
  const h = createHash('sha256').update(spec.id).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Xen's name for the `index`th disk on its bus: xvda, xvdb, ... or hda, hdb, ... (IDE, at most 4). */
function vdev(disk: XenDisk, index: number, type: XenType, spec: DomainSpec): string {
  const field = `spec.domain.disks[${index}].bus`;
  if (disk.bus === 'virtio') {
    throw new InvalidDomainSpecError(
      spec.id,
      'virtio is a QEMU bus; Xen guests have xvd (its paravirtual block), or ide for hvm guests',
      field,
    );
  }
  if (disk.bus === 'ide') {
    if (type !== 'hvm') {
      throw new InvalidDomainSpecError(
        spec.id,
        `ide disks need an emulated machine (xenType hvm), not ${type}`,
        field,
      );
    }
    if (index > 3) throw new InvalidDomainSpecError(spec.id, 'IDE has four places: hda to hdd', field);
    return `hd${'abcd'[index]}`;
  }
  return `xvd${String.fromCharCode(97 + index)}`;
}

/** The checks of the boot section for this guest type. */
function checkBoot(spec: DomainSpec, type: XenType, kernel: string | undefined): void {
  const boot = spec.boot ?? {};
  if (boot.firmware === 'uefi' && type !== 'hvm') {
    throw new InvalidDomainSpecError(
      spec.id,
      `firmware uefi needs xenType hvm (a ${type} guest has no firmware: it boots its kernel)`,
      'spec.domain.boot.firmware',
    );
  }
  if (type === 'pvh' && !kernel) {
    throw new InvalidDomainSpecError(
      spec.id,
      'a pvh guest boots a kernel: give one, or use xenType hvm (boot from the disk) or pv (pygrub reads it from the disk)',
      'spec.domain.boot.kernel',
    );
  }
  if (!kernel && (boot.initrd || boot.cmdline)) {
    throw new InvalidDomainSpecError(
      spec.id,
      'an initrd or command line needs a kernel to go with',
      boot.initrd ? 'spec.domain.boot.initrd' : 'spec.domain.boot.cmdline',
    );
  }
}

/** The vif, or none: `bridge` on the template's bridge, `user` on Xenos's NAT bridge. */
function vifLine(spec: DomainSpec): string | undefined {
  const network = spec.network ?? { mode: 'user' as const };
  if (network.mode === 'none') return undefined;
  const bridge = network.mode === 'bridge' ? network.bridge : NAT_BRIDGE;
  if (!bridge) {
    throw new InvalidDomainSpecError(
      spec.id,
      'mode bridge needs the bridge to join (e.g. xenbr0)',
      'spec.domain.network.bridge',
    );
  }
  return `vif = [ ${xlString(`bridge=${bridge},mac=${macAddress(spec.id, XEN_OUI)}`, spec, 'spec.domain.network.bridge')} ]`;
}

/** The kernel command line. A PV or PVH guest's console is hvc0 (it has no serial port): when the template
 *  names another console (`console=ttyS0`, written for QEMU), `console=hvc0` goes last, which makes it
 *  /dev/console, so the same template boots under both drivers. HVM gets ttyS0 when it names none. */
export function xenCmdline(spec: DomainSpec, ports: Record<string, number>, type: XenType): string {
  if (type === 'hvm') return kernelCmdline(spec, ports, 'ttyS0');
  const cmdline = kernelCmdline(spec, ports, 'hvc0');
  return /(^|\s)console=hvc0(\s|$)/.test(cmdline) ? cmdline : `${cmdline} console=hvc0`;
}

/** The whole config, one `key = value` per line. Throws InvalidDomainSpecError naming the field. */
export function xlConfig(input: XlConfigInput): string {
  const { spec } = input;
  const type = xenTypeOf(spec);
  checkBoot(spec, type, input.kernel);
  const { memoryMiB, vcpus } = guestSize(spec);
  const str = (value: string, field: string) => xlString(value, spec, field);
  const lines = [
    `name = ${str(spec.id, 'metadata.name')}`,
    `uuid = "${domainUuid(spec)}"`,
    `type = "${type}"`,
    `memory = ${memoryMiB}`,
    `maxmem = ${memoryMiB}`,
    `vcpus = ${vcpus}`,
  ];
  if (input.kernel) {
    lines.push(`kernel = ${str(input.kernel, 'spec.domain.boot.kernel')}`);
    if (input.ramdisk) lines.push(`ramdisk = ${str(input.ramdisk, 'spec.domain.boot.initrd')}`);
    lines.push(`cmdline = ${str(xenCmdline(spec, input.ports, type), 'spec.domain.boot.cmdline')}`);
  } else if (type === 'pv') {
    lines.push('bootloader = "pygrub"');
  }
  if (type === 'hvm') {
    lines.push('boot = "c"', 'serial = "pty"', 'vnc = 0', 'sdl = 0');
    if (spec.boot?.firmware === 'uefi') lines.push('bios = "ovmf"');
  }
  const disks = input.disks.map((d, i) => {
    const access = d.readOnly ? 'ro' : 'rw';
    // target= comes last: everything after it, commas included, is the path.
    const text = `format=${d.format},vdev=${vdev(d, i, type, spec)},access=${access},target=${d.path}`;
    return str(text, `spec.domain.disks[${i}]`);
  });
  if (disks.length > 0) lines.push(`disk = [ ${disks.join(', ')} ]`);
  const vif = vifLine(spec);
  if (vif) lines.push(vif);
  lines.push('on_poweroff = "destroy"', 'on_reboot = "restart"', 'on_crash = "preserve"');
  return `${lines.join('\n')}\n`;
}
