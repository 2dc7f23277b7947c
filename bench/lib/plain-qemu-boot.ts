// One boot of the demo guest in plain QEMU (no Xenos), timed from spawning QEMU until `ready(consoleFile)`
// says the guest is up; the baseline the guest and QEMU-driver boot benches hold their figures against.

import { type ChildProcess, spawn } from 'node:child_process';
import { createOverlay, plainQemuArgs } from '../../scripts/guest-image/qemu-command.ts';
import { until } from './wait.ts';

export interface PlainBoot {
  /** The guest directory (vmlinux, initrd.img, disk.img). */
  image: string;
  /** Path prefix for this boot's overlay, console and monitor files. */
  prefix: string;
  /** `vmlinux` (default) or `vmlinuz`. */
  kernel?: string;
  /** A host port forwarded to the guest's port 80. */
  httpPort?: number;
  /** True once the guest is up, given its console file. */
  ready(consoleFile: string): boolean | Promise<boolean>;
  label: string;
  intervalMs?: number;
}

/** Milliseconds from spawning QEMU until the guest is ready; QEMU is killed after. */
export async function timePlainBoot(b: PlainBoot): Promise<number> {
  const consoleFile = `${b.prefix}.console`;
  const overlay = createOverlay(b.image, `${b.prefix}.qcow2`);
  const started = performance.now();
  const qemu: ChildProcess = spawn(
    'qemu-system-x86_64',
    plainQemuArgs({
      image: b.image,
      ...(b.kernel ? { kernel: b.kernel } : {}),
      cmdline: 'console=ttyS0 xenos.name=bench',
      overlay,
      consoleFile,
      qmpSocket: `${b.prefix}.qmp`,
      ...(b.httpPort ? { httpPort: b.httpPort } : {}),
    }),
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise((resolve) => qemu.once('exit', resolve));
  try {
    await until(
      () => {
        if (qemu.exitCode !== null) throw new Error(`QEMU exited with ${qemu.exitCode}`);
        return b.ready(consoleFile);
      },
      120_000,
      b.label,
      b.intervalMs ?? 20,
    );
    return performance.now() - started;
  } finally {
    qemu.kill('SIGKILL');
    await exited;
  }
}
