// What one run of a QEMU domain gets, as a plan for the process driver's launcher (which reaps an
// interrupted launch, allocates the host ports, sets up cgroups and starts the detached supervisor that
// keeps the exit code): the QEMU command line (qemu-command.ts), its token file, and — sandboxed — the
// bubblewrap sandbox that shows QEMU its vm/ directory at /domain (read-write), the image at /image
// (read-only), /dev/kvm when KVM is used, the token, and the host's /usr; nothing else of the data dir.

import { rm } from 'node:fs/promises';
import type { DomainResources, DomainSpec, LimitsReport } from '../driver.ts';
import type { DomainPaths } from '../process/domain-record.ts';
import { type LaunchContext, type LaunchPlan, sandboxedLaunch, writeToken } from '../process/launch-plan.ts';
import { DOMAIN_MOUNT, type SandboxPlan } from '../sandbox/bwrap-plan.ts';
import { resolveVmImage } from '../vm-image.ts';
import { guestSize } from '../vm-shape.ts';
import { openMonitorDir } from './monitor-dir.ts';
import { plannedDisks, withBaseFormats } from './prepare-vm.ts';
import { type Accel, memoryArgument, qemuCommand } from './qemu-command.ts';
import { hostMounts, IMAGE_MOUNT, sandboxMounts, type VmPaths } from './vm-layout.ts';

const MiB = 1024 * 1024;
/** What QEMU itself needs beside the guest's memory (devices, the bounded TCG cache, slirp, buffers). */
export const QEMU_OVERHEAD_BYTES = 256 * MiB;

export interface VmLaunchOptions {
  accel: Accel;
  /** The QEMU binary (on PATH, or absolute). */
  binary: string;
  uefiCode?: string;
  /** Start paused, waiting for a live migration (qemu-command.ts). */
  incoming?: boolean;
}

/** The domain's cgroup limits: the guest's memory plus QEMU's own, and the vcpus (or cpuMillis). */
export function vmCgroupResources(spec: DomainSpec): DomainResources {
  const { memoryMiB, vcpus } = guestSize(spec);
  return {
    memoryBytes: memoryMiB * MiB + QEMU_OVERHEAD_BYTES,
    cpuMillis: spec.resources?.cpuMillis ?? vcpus * 1000,
  };
}

/** A planner for launchDomain (../process/launch-domain.ts). */
export function vmPlanner(vm: VmLaunchOptions) {
  return async (
    spec: DomainSpec,
    domainPaths: DomainPaths,
    ports: Record<string, number>,
    ctx: LaunchContext,
  ): Promise<LaunchPlan & { limits(cgroup: LimitsReport): LimitsReport }> => {
    const paths = domainPaths as VmPaths;
    const image = await resolveVmImage(spec);
    const disks = await withBaseFormats(image, plannedDisks(spec, image));
    await rm(paths.tokenFile, { force: true });
    await openMonitorDir(paths.qmpSocket, ctx.sandbox?.identity);
    const withToken = spec.token !== undefined;
    if (withToken) await writeToken(paths, spec.token!, ctx.sandbox?.identity);
    const mounts = ctx.sandbox ? sandboxMounts() : hostMounts(paths, image);
    const command = qemuCommand({
      spec,
      image,
      mounts,
      disks,
      ports,
      hostAddress: ctx.advertiseAddress,
      accel: vm.accel,
      binary: vm.binary,
      withToken,
      uefiCode: vm.uefiCode,
      incoming: vm.incoming,
    });
    const { memoryMiB, vcpus } = guestSize(spec);
    const limits = (cgroup: LimitsReport): LimitsReport => ({
      enforced: true,
      mechanism: `qemu -m ${memoryArgument(memoryMiB, vm.accel)} -smp ${vcpus}${cgroup.enforced ? `; QEMU itself in ${cgroup.mechanism}` : ''}`,
      ...(cgroup.enforced ? {} : { reason: `QEMU itself runs without a cgroup limit: ${cgroup.reason}` }),
    });
    const env = { PATH: ctx.path };
    const base = { command, env, hostCwd: paths.vm, workDir: DOMAIN_MOUNT, limits };
    if (!ctx.sandbox) {
      return {
        ...base,
        argv: command,
        spawnCwd: paths.vm,
        workDir: paths.vm,
        isolation: { sandboxed: false, reason: 'xenosd runs with --unsafe-no-sandbox' },
      };
    }
    const plan: SandboxPlan = {
      rootfs: paths.vm,
      workDir: DOMAIN_MOUNT,
      identity: ctx.sandbox.identity,
      tokenFile: withToken ? paths.tokenFile : undefined,
      readOnlyPaths: ctx.sandbox.sandbox.readOnlyPaths,
      readOnlyBinds: [{ source: image.root, dest: IMAGE_MOUNT }],
      devices: vm.accel === 'kvm' ? ['/dev/kvm'] : [],
      hostname: spec.id,
      // QEMU writes nothing to /tmp; a small one keeps libraries that probe it happy.
      tmpfsBytes: 16 * MiB,
    };
    const { argv, isolation } = await sandboxedLaunch(paths, ctx.sandbox, plan, command);
    return { ...base, argv, spawnCwd: '/', isolation };
  };
}
