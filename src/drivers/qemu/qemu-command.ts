// The QEMU command line of one guest, built from its spec: pure, so the same spec gives the same line
// (tests read it; migration starts the destination with the same devices). Every option and why it is
// there is in README.md; in short: no default devices or user config, no display, the serial console on
// stdout, QMP on a unix socket, explicit -blockdev nodes named `disk-<name>` (migration addresses them),
// user-mode networking with one forward per template port, pvpanic so a guest panic ends QEMU with a
// failure, and QEMU's own seccomp sandbox.

import type { DomainSpec } from '../driver.ts';
import { InvalidDomainSpecError } from '../errors.ts';
import type { BaseFormat } from '../qcow2-overlay.ts';
import type { VmImage } from '../vm-image.ts';
import { guestSize, kernelCmdline, macAddress } from '../vm-shape.ts';
import { at, type VmMounts } from './vm-layout.ts';

export type Accel = 'kvm' | 'tcg';

/** QEMU's monitor socket, relative to its working directory (vm/, /domain in the sandbox): a unix
 *  socket path holds at most 107 bytes, and a data dir may be deep. */
export const QMP_SOCKET_NAME = 'monitor/qmp.sock';

/** One disk of the guest, as prepared. */
export interface VmDisk {
  name: string;
  bus: 'virtio' | 'ide';
  readOnly: boolean;
  /** The image's disk below the overlay (`image` disks: its path relative to the image); absent for a
   *  fresh `empty` disk. */
  base?: { relative: string; format: BaseFormat };
}

export interface QemuCommandInput {
  spec: DomainSpec;
  image: VmImage;
  mounts: VmMounts;
  disks: VmDisk[];
  /** Allocated host port by template port name. */
  ports: Record<string, number>;
  /** Where the forwards listen on the host. */
  hostAddress: string;
  accel: Accel;
  binary: string;
  /** Hand the token file to the guest over fw_cfg. */
  withToken: boolean;
  /** UEFI firmware code file (disk boot with `firmware: uefi`). */
  uefiCode?: string;
  /** Start paused, waiting for a live migration's state (`-S -incoming defer`; the migration names the
   *  socket over QMP). */
  incoming?: boolean;
}

/** The block node of disk `name`: the format node the guest's device uses. Migration mirrors it. */
export function diskNode(name: string): string {
  return `disk-${name}`;
}

/** A value inside a QEMU `key=value,...` option: a comma is written twice. */
export function optionValue(text: string): string {
  return text.replaceAll(',', ',,');
}

/** The -blockdev chain of one disk, in QEMU's JSON form (it can say `backing: null`, and needs no escaping):
 *  the base as nodes of its own (`disk-<name>-base`, read-only) and the qcow2 node `disk-<name>` over the
 *  domain's file with `backing` naming the base node, or null — QEMU never opens a backing file a
 *  header names (a qcow2 base's own backing file included). */
function blockdevArgs(disk: VmDisk, m: VmMounts): string[] {
  const node = diskNode(disk.name);
  const ro = disk.readOnly ? { 'read-only': true } : {};
  const nodes: Record<string, unknown>[] = [];
  if (disk.base) {
    nodes.push(
      {
        driver: 'file',
        filename: at.image(m, disk.base.relative),
        'node-name': `${node}-base-file`,
        'read-only': true,
      },
      {
        driver: disk.base.format,
        file: `${node}-base-file`,
        'node-name': `${node}-base`,
        'read-only': true,
        ...(disk.base.format === 'qcow2' ? { backing: null } : {}),
      },
    );
  }
  nodes.push(
    { driver: 'file', filename: at.disk(m, disk.name), 'node-name': `${node}-file`, ...ro },
    {
      driver: 'qcow2',
      file: `${node}-file`,
      backing: disk.base ? `${node}-base` : null,
      'node-name': node,
      ...ro,
    },
  );
  return nodes.flatMap((n) => ['-blockdev', JSON.stringify(n)]);
}

function deviceArgs(disk: VmDisk, index: number, bootFromDisk: boolean): string[] {
  const node = diskNode(disk.name);
  const boot = bootFromDisk && index === 0 ? ',bootindex=0' : '';
  if (disk.bus === 'ide') return ['-device', `ide-hd,drive=${node},id=${node}-dev,bus=ide.${index}${boot}`];
  const ro = disk.readOnly ? ',read-only=on' : '';
  return ['-device', `virtio-blk-pci,drive=${node},id=${node}-dev${ro}${boot}`];
}

function networkArgs(input: QemuCommandInput): string[] {
  const { spec } = input;
  const mode = spec.network?.mode ?? 'user';
  if (mode === 'none') return [];
  if (mode === 'bridge') {
    throw new InvalidDomainSpecError(
      spec.id,
      'bridge networking is not built yet in the QEMU driver (src/drivers/qemu/README.md says how it will work); use mode: user, whose guest ports are forwarded from host ports',
      'spec.domain.network.mode',
    );
  }
  const forwards = (spec.ports ?? []).map((p) => {
    const hostPort = input.ports[p.name];
    const proto = p.protocol === 'UDP' ? 'udp' : 'tcp';
    return `,hostfwd=${proto}:${input.hostAddress}:${hostPort}-:${p.port}`;
  });
  return [
    '-netdev',
    `user,id=net0${forwards.join('')}`,
    // romfile= : no PXE option ROM (the guest never boots from the network; same devices on every host).
    '-device',
    `virtio-net-pci,netdev=net0,id=net0-dev,mac=${macAddress(spec.id)},romfile=`,
  ];
}

/**
 * `-m` for the guest. Under TCG, 8 KiB less than asked, so the RAM block is not a multiple of 256 KiB: QEMU
 * before 9.0 syncs the migration dirty bitmap of such blocks by a fast path that clears dirty bits without
 * resetting TCG's TLB, so guest writes made after it are lost until the guest next switches page tables — the
 * target resumes with stale memory and crashes (fixed upstream by 03bfc2188f, "physmem: Fix migration dirty
 * bitmap coherency with TCG memory access"; Debian 12 ships 7.2). Any other size takes the slow path, which
 * resets the TLB. KVM tracks dirty pages itself and keeps the size asked.
 */
export function memoryArgument(memoryMiB: number, accel: Accel): string {
  return accel === 'tcg' ? `${memoryMiB * 1024 - TCG_RAM_TRIM_KIB}K` : `${memoryMiB}M`;
}
const TCG_RAM_TRIM_KIB = 8; // QEMU rounds RAM to 8 KiB; 8 KiB off any whole MiB is not a multiple of 256 KiB

/** The whole argv (binary first) as QEMU runs inside the domain's sandbox. */
export function qemuCommand(input: QemuCommandInput): string[] {
  const { spec, image, disks } = input;
  const { memoryMiB, vcpus } = guestSize(spec);
  const argv = [
    input.binary,
    '-name',
    `${spec.id},process=qemu-${spec.id}`,
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-machine',
    'pc',
    '-accel',
    // TCG: a bounded translation cache (its default, 1 GiB, would count against the domain's memory).
    input.accel === 'tcg' ? 'tcg,tb-size=64' : 'kvm',
    // TCG: a model every host emulates the same way (migration needs the same CPU on both sides).
    '-cpu',
    input.accel === 'kvm' ? 'host' : 'qemu64',
    '-m',
    memoryArgument(memoryMiB, input.accel),
    '-smp',
    String(vcpus),
    '-chardev',
    'stdio,id=console,signal=off',
    '-serial',
    'chardev:console',
    '-qmp',
    `unix:${QMP_SOCKET_NAME},server=on,wait=off`,
    '-device',
    'pvpanic',
    '-action',
    'panic=exit-failure',
    '-sandbox',
    'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
  ];
  if (image.kernel) {
    argv.push('-kernel', at.image(input.mounts, image.kernel.relative));
    argv.push('-append', kernelCmdline(spec, input.ports));
    if (image.initrd) argv.push('-initrd', at.image(input.mounts, image.initrd.relative));
  } else if (!disks.length) {
    throw new InvalidDomainSpecError(
      spec.id,
      'nothing to boot: the template names no kernel and the guest has no disk',
      'spec.domain.boot',
    );
  } else if (spec.boot?.firmware === 'uefi') {
    if (!input.uefiCode) {
      throw new InvalidDomainSpecError(
        spec.id,
        'UEFI firmware is not installed on this host (Debian package ovmf); use firmware: bios or install it',
        'spec.domain.boot.firmware',
      );
    }
    argv.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${optionValue(input.uefiCode)}`);
  }
  disks.forEach((disk, i) => {
    argv.push(...blockdevArgs(disk, input.mounts), ...deviceArgs(disk, i, !image.kernel));
  });
  argv.push(...networkArgs(input));
  if (input.withToken) {
    argv.push('-fw_cfg', `name=opt/xenos/token,file=${optionValue(input.mounts.token)}`);
  }
  if (input.incoming) argv.push('-S', '-incoming', 'defer');
  return argv;
}
