// Whether QEMU can run guests on this host, and with which accelerator: the binary answers, and KVM is
// usable (/dev/kvm readable and writable, and the CPU has vmx/svm) or only TCG emulation is. The driver
// registry asks it for `auto` (QEMU is chosen only with KVM) and the QEMU driver for its accelerator.

import { execFile } from 'node:child_process';
import { access, constants, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { ProbeResult } from '../driver.ts';
import { execFailure } from '../errors.ts';

const run = promisify(execFile);

const PROBE_TIMEOUT_MS = 10_000;

/** QEMU: the binary answers, and KVM is usable (/dev/kvm writable and the CPU has vmx/svm). */
export async function probeQemu(
  options: { signal?: AbortSignal; binary?: string } = {},
): Promise<ProbeResult & { accel?: 'kvm' | 'tcg' }> {
  const binary = options.binary ?? 'qemu-system-x86_64';
  try {
    await run(binary, ['--version'], { timeout: PROBE_TIMEOUT_MS, signal: options.signal });
  } catch (err) {
    return { usable: false, reason: execFailure(err, binary) };
  }
  const kvmNode = await access('/dev/kvm', constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const virt = /\b(vmx|svm)\b/.test(cpuinfo);
  if (kvmNode && virt) return { usable: true, accel: 'kvm' };
  return {
    usable: true,
    accel: 'tcg',
    reason: kvmNode
      ? '/dev/kvm exists but the CPU shows no vmx/svm: only TCG emulation'
      : 'no usable /dev/kvm: only TCG emulation',
  };
}
