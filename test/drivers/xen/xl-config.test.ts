// The Xen driver's domain configs, checked by Xen's own parser: every config is run through Debian's real
// `xl create -n` (xen-utils 4.17 with the preload of scripts/xen/xl-offline.ts, no hypervisor needed),
// which must accept it without a complaint and print a domain whose JSON is what the template asked for:
// every VM template in manifests/ in each guest type, then a table of edge cases (quoting, many disks,
// IDE, UEFI, no network, parameters in the command line). Templates Xenos knows to be wrong are refused
// before xl sees them, naming the field.

// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are Xenos `${params.X}` templates, not JS ones
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureOfflineXl } from '../../../scripts/xen/xl-offline.ts';
import type { DomainSpec } from '../../../src/drivers/driver.ts';
import { InvalidDomainSpecError } from '../../../src/drivers/errors.ts';
import { macAddress } from '../../../src/drivers/vm-shape.ts';
import {
  domainUuid,
  NAT_BRIDGE,
  XEN_OUI,
  type XenType,
  type XlConfigInput,
  xenTypeOf,
  xlConfig,
} from '../../../src/drivers/xen/xl-config.ts';
import { configInput, TEMPLATES, XlWorkspace } from './xl-fixtures.ts';

let ws: XlWorkspace;
beforeAll(async () => {
  ws = new XlWorkspace(await ensureOfflineXl({ log: (l) => console.log(l) }));
}, 10 * 60_000);
afterAll(() => ws?.cleanup());

/** The domain xl printed holds what the spec asked for. */
function expectDomain(domain: any, spec: DomainSpec, input: XlConfigInput): void {
  const type: XenType = xenTypeOf(spec);
  const memKiB = Math.ceil((spec.resources?.memoryBytes ?? 256 * 2 ** 20) / 2 ** 20) * 1024;
  expect(domain.c_info).toMatchObject({ type, name: spec.id, uuid: domainUuid(spec) });
  expect(domain.b_info).toMatchObject({
    max_memkb: memKiB,
    target_memkb: memKiB,
    max_vcpus: spec.resources?.vcpus ?? 1,
  });
  if (input.kernel) {
    expect(domain.b_info.kernel).toBe(input.kernel);
    expect(domain.b_info.ramdisk).toBe(input.ramdisk);
    expect(domain.b_info.cmdline).toMatch(/(^|\s)console=/);
  } else if (type === 'pv') {
    expect(domain.b_info.bootloader).toBe('pygrub');
  }
  if (type === 'hvm') expect(domain.b_info['type.hvm']).toMatchObject({ serial: 'pty', boot: 'c' });
  expect(domain.disks ?? []).toEqual(
    input.disks.map((d, i) => ({
      pdev_path: d.path,
      vdev: d.bus === 'ide' ? `hd${'abcd'[i]}` : `xvd${'abcdefghijklmnop'[i]}`,
      format: d.format,
      ...(d.readOnly ? {} : { readwrite: 1 }),
    })),
  );
  const nics = domain.nics ?? [];
  if (spec.network?.mode === 'none') expect(nics).toEqual([]);
  else {
    const bridge = spec.network?.mode === 'bridge' ? spec.network.bridge : NAT_BRIDGE;
    expect(nics).toEqual([{ devid: 0, mac: macAddress(spec.id, XEN_OUI), bridge }]);
  }
  expect(domain.on_crash).toBe('preserve');
}

async function accepted(spec: DomainSpec): Promise<any> {
  const input = await configInput(spec);
  const parsed = ws.parse(xlConfig(input));
  expect(parsed.complaints, xlConfig(input)).toEqual([]);
  expect(parsed.code).toBe(0);
  expectDomain(parsed.domain, spec, input);
  return parsed.domain;
}

describe("xl configs, checked by Xen's own parser", () => {
  for (const { file, template, parameters } of TEMPLATES) {
    for (const type of ['pv', 'pvh', 'hvm'] as const) {
      it(`manifests/${file} as a ${type} guest`, async () => {
        const spec = ws.specOf(template, parameters);
        spec.boot = { ...spec.boot, xenType: type };
        const domain = await accepted(spec);
        if (file.startsWith('hadoop')) expect(domain.b_info.cmdline).toContain('xenos.role=worker');
      });
    }
  }

  it('xl itself refuses what it must: a config without a name, with its own words', () => {
    const parsed = ws.parse('type = "pvh"\nmemory = 128\n');
    expect(parsed.code).toBe(1);
    expect(parsed.complaints.join('\n')).toMatch(/Domain name must be specified/);
  });

  const web = TEMPLATES[0].template;
  const edge: [string, (s: DomainSpec) => void, (domain: any, s: DomainSpec) => void][] = [
    [
      'quotes, backslashes and spaces in the command line and paths',
      (s) => {
        s.boot = { ...s.boot, cmdline: 'console=hvc0 say="hi there" path=C:\\guest\\x ${params.who}' };
        s.parameters = { who: 'a"b' };
      },
      (d) => expect(d.b_info.cmdline).toBe('console=hvc0 say="hi there" path=C:\\guest\\x a"b'),
    ],
    [
      'the console added on hvc0 when the template chose none, on ttyS0 for hvm',
      (s) => {
        s.boot = { ...s.boot, cmdline: 'quiet' };
      },
      (d, s) =>
        expect(d.b_info.cmdline).toBe(xenTypeOf(s) === 'hvm' ? 'quiet console=ttyS0' : 'quiet console=hvc0'),
    ],
    [
      'a template written for QEMU (console=ttyS0) gets hvc0 last under PV and PVH, so its console is seen',
      (s) => {
        s.boot = { ...s.boot, cmdline: 'console=ttyS0 quiet' };
      },
      (d, s) =>
        expect(d.b_info.cmdline).toBe(
          xenTypeOf(s) === 'hvm' ? 'console=ttyS0 quiet' : 'console=ttyS0 quiet console=hvc0',
        ),
    ],
    [
      'four disks, one read-only and one empty',
      (s) => {
        s.disks = [
          { name: 'root', source: 'image' },
          { name: 'data', source: 'empty', size: '1Gi' },
          { name: 'ro', source: 'image', readOnly: true },
          { name: 'scratch', source: 'empty', size: '64Mi', bus: 'xvd' },
        ];
      },
      (d) => expect(d.disks.map((x: any) => x.vdev)).toEqual(['xvda', 'xvdb', 'xvdc', 'xvdd']),
    ],
    [
      'IDE disks on an hvm guest booting UEFI from its disk',
      (s) => {
        s.boot = { xenType: 'hvm', firmware: 'uefi' };
        s.disks = [
          { name: 'root', source: 'image', bus: 'ide' },
          { name: 'data', source: 'empty', size: '1Gi', bus: 'ide' },
        ];
      },
      (d) => {
        expect(d.b_info['type.hvm'].bios).toBe('ovmf');
        expect(d.disks.map((x: any) => x.vdev)).toEqual(['hda', 'hdb']);
      },
    ],
    [
      'a pv guest without a kernel boots through pygrub',
      (s) => {
        s.boot = { xenType: 'pv' };
      },
      (d) => expect(d.b_info.bootloader).toBe('pygrub'),
    ],
    [
      'no network',
      (s) => {
        s.network = { mode: 'none' };
      },
      (d) => expect(d.nics ?? []).toEqual([]),
    ],
    [
      'a bridge of the host',
      (s) => {
        s.network = { mode: 'bridge', bridge: 'br-lan.5' };
      },
      (d) => expect(d.nics[0].bridge).toBe('br-lan.5'),
    ],
    [
      'odd memory rounded up to whole MiB, several vCPUs, a uid that is not a UUID',
      (s) => {
        s.resources = { memoryBytes: 100 * 2 ** 20 + 1, vcpus: 3 };
        s.instance = { ...s.instance, uid: 'not-a-uuid' };
      },
      (d, s) => {
        expect(d.b_info.max_memkb).toBe(101 * 1024);
        expect(d.b_info.max_vcpus).toBe(3);
        expect(d.c_info.uuid).toBe(domainUuid(s));
        expect(d.c_info.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
      },
    ],
  ];
  for (const [name, change, check] of edge) {
    it(`edge case: ${name}`, async () => {
      const spec = ws.specOf(web);
      change(spec);
      ws.giveImage(spec);
      check(await accepted(spec), spec);
    });
  }
});

describe('templates refused before xl sees them, naming the field', () => {
  const web = TEMPLATES[0].template;
  const refusals: [string, (s: DomainSpec) => void, string, RegExp][] = [
    [
      'a pvh guest without a kernel',
      (s) => (s.boot = { xenType: 'pvh' }),
      'spec.domain.boot.kernel',
      /boots a kernel/,
    ],
    [
      'UEFI firmware on a pv guest',
      (s) => (s.boot = { ...s.boot, xenType: 'pv', firmware: 'uefi' }),
      'spec.domain.boot.firmware',
      /needs xenType hvm/,
    ],
    [
      'an IDE disk on a pvh guest',
      (s) => (s.disks = [{ name: 'root', source: 'image', bus: 'ide' }]),
      'spec.domain.disks[0].bus',
      /xenType hvm/,
    ],
    [
      'a virtio disk (a QEMU bus)',
      (s) => (s.disks = [{ name: 'root', source: 'image', bus: 'virtio' }]),
      'spec.domain.disks[0].bus',
      /QEMU bus/,
    ],
    [
      'a newline in the command line (it would end the setting)',
      (s) => (s.boot = { ...s.boot, cmdline: 'quiet\nmemory = 99999' }),
      'spec.domain.boot.cmdline',
      /control characters/,
    ],
    [
      'an initrd without a kernel',
      (s) => (s.boot = { xenType: 'hvm', initrd: 'initrd.img' }),
      'spec.domain.boot.kernel',
      /needs a kernel/,
    ],
    [
      'bridge mode without a bridge',
      (s) => (s.network = { mode: 'bridge' }),
      'spec.domain.network.bridge',
      /needs the bridge/,
    ],
  ];
  for (const [name, change, field, message] of refusals) {
    it(name, async () => {
      const spec = ws.specOf(web);
      change(spec);
      const thrown = await configInput(spec)
        .then((input) => xlConfig(input))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(thrown).toBeInstanceOf(InvalidDomainSpecError);
      expect((thrown as InvalidDomainSpecError).field).toBe(field);
      expect((thrown as Error).message).toMatch(message);
    });
  }
});
