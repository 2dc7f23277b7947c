// Choosing this host's driver: by name, or `auto` — Xen when `xl` talks to a running hypervisor, else QEMU
// when it is installed with KVM (TCG works but is far slower than a process, so it must be asked for by
// name), else the process driver, which every Linux host can run. The result says why the others were
// not taken, for the Host status.

import type { Driver, DriverName, ProbeResult } from './driver.ts';
import { DRIVER_NAMES } from './driver.ts';
import { DriverUnavailableError } from './errors.ts';
import {
  ProcessDriver,
  type ProcessDriverComponents,
  type ProcessDriverInit,
} from './process/process-driver.ts';
import { probeQemu } from './qemu/probe-qemu.ts';
import { QemuDriver } from './qemu/qemu-driver.ts';
import { probeXen } from './xen/probe-xen.ts';
import { XenDriver } from './xen/xen-driver.ts';

export { DRIVER_NAMES, probeQemu, probeXen };
export const DRIVER_CHOICES = [...DRIVER_NAMES, 'auto'] as const;
export type DriverChoice = (typeof DRIVER_CHOICES)[number];

export interface DriverSelection {
  driver: Driver;
  /** For each driver not chosen, why (`xen: xl is not installed`). */
  notChosen: string[];
}

export type SelectDriverInit = ProcessDriverInit & ProcessDriverComponents;

function build(name: DriverName, init: SelectDriverInit): Driver {
  if (name === 'process') return new ProcessDriver({ log: init.log }, init);
  if (name === 'qemu') return new QemuDriver({ log: init.log }, init);
  return new XenDriver({ log: init.log }, init);
}

/** The driver for this host. Throws DriverUnavailableError when a named driver cannot be used here. */
export async function selectDriver(
  choice: DriverChoice,
  init: SelectDriverInit,
  options: { signal?: AbortSignal } = {},
): Promise<DriverSelection> {
  if (!(DRIVER_CHOICES as readonly string[]).includes(choice)) {
    throw new DriverUnavailableError(
      String(choice),
      `unknown driver; choose one of ${DRIVER_CHOICES.join(', ')}`,
    );
  }
  if (choice !== 'auto') {
    const driver = build(choice, init);
    const probe = await driver.probe(options);
    if (!probe.usable) throw new DriverUnavailableError(choice, probe.reason ?? 'its probe failed');
    return { driver, notChosen: [] };
  }
  const notChosen: string[] = [];
  const xen = await probeXen(options);
  const qemu = await probeQemu(options);
  const candidates: [DriverName, ProbeResult][] = [
    ['xen', xen],
    [
      'qemu',
      qemu.usable && qemu.accel !== 'kvm'
        ? { usable: false, reason: `${qemu.reason}; ask for qemu by name to use it` }
        : qemu,
    ],
  ];
  for (const [name, probe] of candidates) {
    if (!probe.usable) notChosen.push(`${name}: ${probe.reason}`);
    else return { driver: build(name, init), notChosen };
  }
  const driver = build('process', init);
  const probe = await driver.probe(options);
  if (!probe.usable) {
    throw new DriverUnavailableError(
      'auto',
      `no driver can run here: ${[...notChosen, `process: ${probe.reason}`].join('; ')}`,
    );
  }
  return { driver, notChosen };
}
