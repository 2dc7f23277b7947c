// The QEMU command line and disk plan, read without running QEMU: named block nodes per disk with the
// base given explicitly, port forwards on the host address, the seccomp sandbox and pvpanic, the token
// over fw_cfg, `${...}` in the kernel cmdline, commas escaped, and specs that cannot work refused with the
// field named (bridge networking, a Xen bus, an empty disk without size, a path out of the image).
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are Xenos `${params.X}` templates, not JS ones

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainSpec } from '../../src/drivers/driver.ts';
import { InvalidDomainSpecError, ParameterReferenceError } from '../../src/drivers/errors.ts';
import { plannedDisks } from '../../src/drivers/qemu/prepare-vm.ts';
import { memoryArgument, optionValue, qemuCommand } from '../../src/drivers/qemu/qemu-command.ts';
import { sandboxMounts } from '../../src/drivers/qemu/vm-layout.ts';
import { resolveVmImage } from '../../src/drivers/vm-image.ts';
import { kernelCmdline, macAddress } from '../../src/drivers/vm-shape.ts';

let imageDir: string;
beforeAll(async () => {
  imageDir = await mkdtemp(join(tmpdir(), 'xenos-qemu-cmd-'));
  await writeFile(join(imageDir, 'vmlinuz'), 'kernel');
  await writeFile(join(imageDir, 'initrd.img'), 'initrd');
  await writeFile(join(imageDir, 'disk.img'), Buffer.alloc(1024));
  await mkdir(join(imageDir, 'sub'));
});
afterAll(() => rm(imageDir, { recursive: true, force: true }));

function spec(extra: Partial<DomainSpec> = {}): DomainSpec {
  return {
    id: 'xenos-test-web-12345678',
    instance: { namespace: 'test', name: 'web', uid: '12345678' },
    image: { path: imageDir, format: 'directory' },
    boot: { kernel: 'vmlinuz', initrd: 'initrd.img', cmdline: 'xenos.name=${instance.name} p=${port.http}' },
    ports: [
      { name: 'http', port: 80, protocol: 'TCP' },
      { name: 'dns', port: 53, protocol: 'UDP' },
    ],
    resources: { memoryBytes: 128 * 1024 * 1024, vcpus: 2 },
    ...extra,
  };
}

async function command(s: DomainSpec, withToken = false): Promise<string[]> {
  const image = await resolveVmImage(s);
  return qemuCommand({
    spec: s,
    image,
    mounts: sandboxMounts(),
    disks: plannedDisks(s, image),
    ports: { http: 40080, dns: 40053 },
    hostAddress: '192.0.2.7',
    accel: 'tcg',
    binary: 'qemu-system-x86_64',
    withToken,
  });
}

/** The value after each occurrence of `flag`. */
function values(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));
}

describe('QEMU command line', () => {
  it('boots the kernel with the expanded cmdline, the disk as named nodes, forwards and the sandbox', async () => {
    const argv = await command(spec(), true);
    expect(argv[0]).toBe('qemu-system-x86_64');
    for (const flag of ['-nodefaults', '-no-user-config']) expect(argv).toContain(flag);
    expect(values(argv, '-accel')).toEqual(['tcg,tb-size=64']);
    expect(values(argv, '-cpu')).toEqual(['qemu64']);
    // 128 MiB less 8 KiB under TCG: not a multiple of 256 KiB (QEMU 7.2's dirty-bitmap bug, see memoryArgument).
    expect(values(argv, '-m')).toEqual(['131064K']);
    expect(values(argv, '-smp')).toEqual(['2']);
    expect(values(argv, '-kernel')).toEqual(['/image/vmlinuz']);
    expect(values(argv, '-initrd')).toEqual(['/image/initrd.img']);
    expect(values(argv, '-append')).toEqual(['xenos.name=web p=40080 console=ttyS0']);
    expect(values(argv, '-qmp')).toEqual(['unix:monitor/qmp.sock,server=on,wait=off']);
    expect(values(argv, '-sandbox')).toEqual([
      'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
    ]);
    expect(values(argv, '-action')).toEqual(['panic=exit-failure']);
    expect(argv).not.toContain('-S');
    expect(values(argv, '-blockdev').map((b) => JSON.parse(b))).toEqual([
      { driver: 'file', filename: '/image/disk.img', 'node-name': 'disk-root-base-file', 'read-only': true },
      { driver: 'raw', file: 'disk-root-base-file', 'node-name': 'disk-root-base', 'read-only': true },
      { driver: 'file', filename: '/domain/disks/root.qcow2', 'node-name': 'disk-root-file' },
      { driver: 'qcow2', file: 'disk-root-file', backing: 'disk-root-base', 'node-name': 'disk-root' },
    ]);
    expect(values(argv, '-device')).toContain('virtio-blk-pci,drive=disk-root,id=disk-root-dev');
    expect(values(argv, '-netdev')).toEqual([
      'user,id=net0,hostfwd=tcp:192.0.2.7:40080-:80,hostfwd=udp:192.0.2.7:40053-:53',
    ]);
    expect(values(argv, '-device')).toContain(
      `virtio-net-pci,netdev=net0,id=net0-dev,mac=${macAddress('xenos-test-web-12345678')},romfile=`,
    );
    expect(values(argv, '-fw_cfg')).toEqual(['name=opt/xenos/token,file=/run/xenos/token']);
    // The same spec gives the same line (the destination of a migration builds it again).
    expect(await command(spec(), true)).toEqual(argv);
  });

  it('keeps the memory asked under KVM and trims 8 KiB under TCG, never to a multiple of 256 KiB', () => {
    expect(memoryArgument(128, 'kvm')).toBe('128M');
    for (const mib of [16, 64, 128, 1024]) {
      const kib = Number(memoryArgument(mib, 'tcg').replace(/K$/, ''));
      expect(kib % 8).toBe(0);
      expect(kib % 256).not.toBe(0);
      expect(mib * 1024 - kib).toBe(8);
    }
  });

  it('lists the disks in order: an overlay on the image and a fresh one; boots from disk without a kernel', async () => {
    const argv = await command(
      spec({
        boot: undefined,
        disks: [
          { name: 'data', source: 'empty', size: '1Gi', bus: 'ide' },
          { name: 'root', source: 'image', readOnly: true },
        ],
      }),
    );
    expect(argv).not.toContain('-kernel');
    const blockdevs = values(argv, '-blockdev').map((b) => JSON.parse(b));
    // A fresh disk: no backing at all, said explicitly, so QEMU reads no backing name from its header.
    expect(blockdevs).toContainEqual({
      driver: 'qcow2',
      file: 'disk-data-file',
      backing: null,
      'node-name': 'disk-data',
    });
    expect(blockdevs).toContainEqual({
      driver: 'qcow2',
      file: 'disk-root-file',
      backing: 'disk-root-base',
      'node-name': 'disk-root',
      'read-only': true,
    });
    expect(values(argv, '-device').filter((d) => d.includes('drive=disk-'))).toEqual([
      'ide-hd,drive=disk-data,id=disk-data-dev,bus=ide.0,bootindex=0',
      'virtio-blk-pci,drive=disk-root,id=disk-root-dev,read-only=on',
    ]);
    expect(argv).not.toContain('-fw_cfg');
  });

  it('leaves the console to a template that chose one and escapes commas in option values', async () => {
    expect(kernelCmdline(spec({ boot: { cmdline: 'console=hvc0 quiet' } }), {})).toBe('console=hvc0 quiet');
    expect(() => kernelCmdline(spec({ boot: { cmdline: '${params.missing}' } }), {})).toThrow(
      ParameterReferenceError,
    );
    expect(optionValue('/data,dir/disk')).toBe('/data,,dir/disk');
  });

  it('refuses what cannot work, naming the field', async () => {
    const refused = async (s: DomainSpec, field: string, message: RegExp) => {
      const err = await command(s).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidDomainSpecError);
      expect((err as InvalidDomainSpecError).field).toBe(field);
      expect((err as Error).message).toMatch(message);
    };
    await refused(
      spec({ network: { mode: 'bridge', bridge: 'br0' } }),
      'spec.domain.network.mode',
      /not built yet/,
    );
    await refused(
      spec({ disks: [{ name: 'x', source: 'image', bus: 'xvd' }] }),
      'spec.domain.disks[0].bus',
      /Xen/,
    );
    await refused(
      spec({ disks: [{ name: 'x', source: 'empty' }] }),
      'spec.domain.disks[0].size',
      /needs a size/,
    );
    await refused(
      spec({ disks: [{ name: 'Bad/Name', source: 'empty', size: '1Gi' }] }),
      'spec.domain.disks[0].name',
      /must match/,
    );
    await refused(
      spec({ boot: { kernel: '../../etc/passwd' } }),
      'spec.domain.boot.kernel',
      /inside the image/,
    );
    await refused(spec({ boot: { kernel: 'sub' } }), 'spec.domain.boot.kernel', /not a file of the image/);
    await refused(
      spec({ image: { path: join(imageDir, 'disk.img') }, boot: { kernel: 'vmlinuz' } }),
      'spec.domain.boot.kernel',
      /single disk file/,
    );
  });

  it('makes no network device with network mode none', async () => {
    const argv = await command(spec({ network: { mode: 'none' } }));
    expect(argv).not.toContain('-netdev');
  });
});
