// What the Host object says about the process driver's domains, as two conditions: `DomainsSandboxed`
// (True: bubblewrap, with the uid range or the user namespace; False: SandboxUnavailable — domains do not
// start — or UnsafeNoSandbox) and `DomainLimitsEnforced` (True: cgroup v1/v2; False: NoCgroups — domains
// run sandboxed but without memory/CPU limits), and `DomainDisksCopyOnWrite` (True: Overlay or Reflink;
// False: PlainCopy, with why neither way works here). Pure: the probes' results in, the conditions out.

import type { HostConditionFact } from '../driver.ts';
import { formatUidRange, type Sandbox, type SandboxStatus } from '../sandbox/sandbox.ts';
import type { CgroupMode } from './cgroup.ts';
import type { DiskModeChoice, DiskModes } from './disk-modes.ts';

export function hostConditionsOf(
  sandbox: Pick<Sandbox, 'mode' | 'uidRange'> | undefined,
  status: SandboxStatus | undefined,
  cgroups: CgroupMode,
  /** What the messages call the domains (the QEMU driver says `QEMU guests`). */
  domains = 'process-driver domains',
): HostConditionFact[] {
  let sandboxed: HostConditionFact;
  if (!sandbox || !status) {
    sandboxed = {
      type: 'DomainsSandboxed',
      status: 'False',
      reason: 'UnsafeNoSandbox',
      message: `xenosd runs with --unsafe-no-sandbox: ${domains} run unsandboxed as xenosd's user and can read the data dir (admin token, state, other domains)`,
    };
  } else if (!status.usable) {
    sandboxed = {
      type: 'DomainsSandboxed',
      status: 'False',
      reason: 'SandboxUnavailable',
      message: `${domains} do not start: ${status.reason}; run \`npm run setup\` (or apt-get install bubblewrap)`,
    };
  } else {
    sandboxed = {
      type: 'DomainsSandboxed',
      status: 'True',
      reason: 'Bubblewrap',
      message:
        sandbox.mode === 'uid'
          ? `${domains} run under ${status.version}, each as its own uid from ${formatUidRange(sandbox.uidRange)}, seeing only their own files`
          : `${domains} run under ${status.version} in a user namespace (xenosd is not root: outside it they share its uid), seeing only their own files`,
    };
  }
  const limits: HostConditionFact =
    cgroups.kind === 'none'
      ? {
          type: 'DomainLimitsEnforced',
          status: 'False',
          reason: 'NoCgroups',
          message: `${domains} run without memory/CPU limits: ${cgroups.reason}`,
        }
      : {
          type: 'DomainLimitsEnforced',
          status: 'True',
          reason: cgroups.kind === 'v2' ? 'CgroupV2' : 'CgroupV1',
          message: `domain memory/CPU limits are enforced by cgroup ${cgroups.kind}`,
        };
  return [sandboxed, limits];
}

/** Whether domains' files share the image's bytes here, and how; the instance's `status.disk` says what
 *  each domain got (a tar image, say, is always extracted). */
export function diskCondition(modes: DiskModes, choice: DiskModeChoice): HostConditionFact {
  const type = 'DomainDisksCopyOnWrite';
  if (modes.overlay.usable && (choice === 'auto' || choice === 'overlay')) {
    return {
      type,
      status: 'True',
      reason: 'Overlay',
      message:
        "a directory image is mounted read-only as the lower layer of each domain's overlay; the domain writes only its own layer",
    };
  }
  if (modes.reflink.usable && (choice === 'auto' || choice === 'reflink')) {
    return {
      type,
      status: 'True',
      reason: 'Reflink',
      message: `each domain's files are a reflink copy of the image (blocks shared until written)${modes.overlay.usable ? '' : `; no overlay: ${modes.overlay.reason}`}`,
    };
  }
  const why =
    choice === 'copy'
      ? 'the driver was told to copy (diskMode: copy)'
      : `no overlay: ${modes.overlay.reason}; no reflink: ${modes.reflink.reason}`;
  return {
    type,
    status: 'False',
    reason: 'PlainCopy',
    message: `each domain gets a whole copy of its image: ${why}`,
  };
}
