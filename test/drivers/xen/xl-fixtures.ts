// What the xl tests and bench/xl-config-check.ts share: the VM templates of manifests/, the domain spec
// the instance controller builds for an instance of one (its image a directory holding the files the
// template names), what the Xen driver would hand xlConfig for it, a run of Debian's real `xl create -n`
// over a config (scripts/xen/xl-offline.ts), and a stream shaped as `xl migrate` writes it.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { buildDesiredDomain } from '../../../controllers/serviceinstance/domain-spec.ts';
import type { OfflineXl } from '../../../scripts/xen/xl-offline.ts';
import type { DomainSpec } from '../../../src/drivers/driver.ts';
import { planDisks, resolveVmImage } from '../../../src/drivers/vm-image.ts';
import type { XenDisk, XlConfigInput } from '../../../src/drivers/xen/xl-config.ts';
import type { ServiceInstance } from '../../../src/model/service-instance.ts';
import type { ServiceTemplate } from '../../../src/model/service-template.ts';

const MANIFESTS = join(import.meta.dirname, '..', '..', '..', 'manifests');
/** What xl always says on stderr here: no /etc/xen/xl.conf (its defaults apply). Anything else counts. */
const XL_CHATTER = [/^Failed to read config file: \/etc\/xen\/xl\.conf: No such file or directory$/];

/** The VM templates of manifests/, with the parameters an instance of each needs. */
export const TEMPLATES = [
  { file: 'vm-web/template.yaml', parameters: {} as Record<string, string> },
  { file: 'hadoop/vm/template.yaml', parameters: { role: 'worker', master: 'hadoop-master' } },
].map(({ file, parameters }) => ({
  file,
  parameters,
  template: load(readFileSync(join(MANIFESTS, file), 'utf8')) as ServiceTemplate,
}));

export interface XlParse {
  code: number | null;
  /** The domain xl printed (its JSON), when it accepted the config. */
  domain: any;
  /** What xl said on stderr beyond its usual chatter. */
  complaints: string[];
}

/** A scratch directory for configs and images; `cleanup()` removes it. */
export class XlWorkspace {
  readonly dir = mkdtempSync(join(tmpdir(), 'xenos-xl-'));
  #n = 0;

  readonly xl: OfflineXl;

  constructor(xl: OfflineXl) {
    this.xl = xl;
  }

  /** `xl create -n -q` of the config text. */
  parse(config: string): XlParse {
    const file = join(this.dir, `${++this.#n}.cfg`);
    writeFileSync(file, config);
    const r = spawnSync(this.xl.xl, ['create', '-n', '-q', file], {
      env: { ...process.env, ...this.xl.env },
      encoding: 'utf8',
      timeout: 20_000,
    });
    const complaints = r.stderr.split('\n').filter((l) => l.trim() && !XL_CHATTER.some((re) => re.test(l)));
    return { code: r.status, domain: r.status === 0 ? JSON.parse(r.stdout) : undefined, complaints };
  }

  /** A directory image holding the files the spec's boot section names, and a disk; set as its image. */
  giveImage(spec: DomainSpec): DomainSpec {
    const dir = join(this.dir, `image-${++this.#n}`);
    mkdirSync(dir, { recursive: true });
    for (const f of [spec.boot?.kernel, spec.boot?.initrd, 'disk.qcow2'])
      if (f) writeFileSync(join(dir, f), '');
    spec.image = { ...spec.image, path: dir, format: 'directory' };
    return spec;
  }

  /** The spec of an instance of `template` (specFor) with an image of its own. */
  specOf(template: ServiceTemplate, parameters: Record<string, string> = {}): DomainSpec {
    return this.giveImage(specFor(template, parameters, '/nowhere'));
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The spec the instance controller builds for an instance `<template>-1` of `template`, its image at
 *  `imagePath` (a directory). */
export function specFor(
  template: ServiceTemplate,
  parameters: Record<string, string>,
  imagePath: string,
): DomainSpec {
  const instance = {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: {
      name: `${template.metadata.name}-1`,
      namespace: 'default',
      uid: '3f0c9b1e-5d2a-4c8e-9f7a-0b1c2d3e4f50',
    },
    spec: { templateRef: { name: template.metadata.name }, parameters },
  } as unknown as ServiceInstance;
  const spec = buildDesiredDomain(instance, template, { imagePath }).spec;
  spec.image = { ...spec.image, path: imagePath, format: 'directory' };
  return spec;
}

/** What the Xen driver would hand xlConfig for this spec: the image's kernel and initrd, and a qcow2
 *  overlay per disk under the domain's directory. */
export async function configInput(spec: DomainSpec): Promise<XlConfigInput> {
  const image = await resolveVmImage(spec);
  const disks: XenDisk[] = planDisks(spec, image).map((d) => ({
    name: d.name,
    path: `/var/lib/xenos/domains/${spec.id}/vm/disks/${d.name}.qcow2`,
    format: 'qcow2',
    readOnly: d.readOnly,
    ...(d.bus ? { bus: d.bus } : {}),
  }));
  return { spec, kernel: image.kernel?.host, ramdisk: image.initrd?.host, disks, ports: { http: 40080 } };
}

function record(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(type, 0);
  head.writeUInt32LE(body.length, 4);
  const pad = Buffer.alloc((8 - (body.length % 8)) % 8);
  return Buffer.concat([head, body, pad]);
}

/** A stream shaped as xl writes it for a PVH guest, and the offset of libxl's END record in it. */
export function xlStream(): { bytes: Buffer; endAt: number } {
  const config = Buffer.from('{"c_info":{"name":"xenos-default-web"}}\0');
  const xlHeader = Buffer.alloc(48);
  xlHeader.write('Xen saved domain, xl format\n \0 \r', 0, 'latin1');
  xlHeader.writeUInt32LE(0x01020304, 32);
  xlHeader.writeUInt32LE(4 + config.length, 44);
  const configLen = Buffer.alloc(4);
  configLen.writeUInt32LE(config.length);
  const libxlHeader = Buffer.alloc(16);
  libxlHeader.write('LibxlFmt', 0, 'latin1');
  libxlHeader.writeUInt32BE(2, 8);
  const libxcHeaders = Buffer.alloc(40);
  libxcHeaders.fill(0xff, 0, 8);
  libxcHeaders.write('XENF', 8, 'latin1');
  libxcHeaders.writeUInt32BE(3, 12);
  libxcHeaders.writeUInt32LE(3, 24); // x86 PVH
  const before = Buffer.concat([
    xlHeader,
    configLen,
    config,
    libxlHeader,
    record(1, Buffer.alloc(0)), // LIBXC_CONTEXT
    libxcHeaders,
    record(1, Buffer.alloc(4096 + 16, 7)), // PAGE_DATA
    record(1, Buffer.alloc(13)), // a body of zeros, padded: not an END
    record(8, Buffer.alloc(24, 1)), // TSC_INFO: suspended by now
    record(9, Buffer.alloc(333, 2)), // HVM_CONTEXT
    record(0, Buffer.alloc(0)), // libxc END
    record(2, Buffer.alloc(21, 3)), // EMULATOR_XENSTORE_DATA
  ]);
  const after = Buffer.concat([record(0, Buffer.alloc(0)), Buffer.from('domain is yours, you are cleared')]);
  return { bytes: Buffer.concat([before, after]), endAt: before.length };
}
