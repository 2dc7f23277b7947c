// The bind-mount plan of a domain's sandbox, as bubblewrap (`bwrap`) arguments: what the domain sees and
// nothing else. Pure: the same plan and host layout give the same arguments (tests read them). Any driver
// that runs a domain as a host process builds on it: the process driver, and the QEMU driver (QEMU as the
// domain's own user, its vm/ at /domain, the image at /image, /dev/kvm when used).
//
// What a domain sees:
//   /domain            its root filesystem (the copy of its image), read-write, owned by its uid; its cwd
//   /usr, /bin, /lib*  the host's system files, read-only (/bin etc. as the host has them: links or dirs)
//   /etc/...           a few read-only files a program needs: name resolution, users, TLS roots, time zone,
//                      dynamic linker cache, Debian alternatives (no shadow, no machine secrets)
//   /run/xenos/token   its instance token, read-only, readable by its uid alone (when it has one)
//   /tmp               a fresh tmpfs, its own
//   /proc              of its own PID namespace: its own processes only
//   /dev               a minimal /dev (null, zero, full, random, urandom, tty, shm, pts)
//   + the read-only paths the operator allows for every domain (`--domain-ro-path`)
// Namespaces: mount, PID, IPC, UTS (hostname = domain id) and cgroup; the network is the host's (the
// process driver has no virtual network: services listen on their allocated host ports).
//
// Identity: when xenosd is root, bwrap itself runs as root (it can reach the 0700 data dir to bind the
// rootfs) and the command starts through `setpriv`, which becomes the domain's own uid/gid (no
// supplementary groups), drops every capability including the bounding set, and sets no_new_privs; the
// sandbox's pid 1 (bwrap's reaper) stays root but is invisible and unreachable to the domain's uid. When
// xenosd is not root, bwrap makes a user namespace (`--unshare-user`, the domain keeps xenosd's uid
// outside) and forbids nested ones (`--disable-userns`); bwrap always sets no_new_privs and drops caps.

import { lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/** Where the domain's root filesystem appears inside its sandbox. */
export const DOMAIN_MOUNT = '/domain';
/** Where the instance token appears inside the sandbox. */
export const TOKEN_PATH = '/run/xenos/token';

/** The /etc entries a domain may read (when the host has them). */
export const ETC_ENTRIES = [
  'resolv.conf',
  'hosts',
  'host.conf',
  'nsswitch.conf',
  'gai.conf',
  'passwd',
  'group',
  'localtime',
  'timezone',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'ssl',
  'ca-certificates',
  'ca-certificates.conf',
  'alternatives',
  'protocols',
  'services',
  'mime.types',
  'os-release',
];

/** How the host lays out its top-level system directories: on merged-/usr hosts /bin is a link. */
export interface HostLayout {
  /** Top-level name → link target (`usr/bin`) or 'dir'. Absent names are not on the host. */
  top: Record<string, string>;
}

const TOP_LEVEL = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

export async function hostLayout(root = '/'): Promise<HostLayout> {
  const top: Record<string, string> = {};
  for (const name of TOP_LEVEL) {
    const path = join(root, name);
    const st = await lstat(path).catch(() => undefined);
    if (!st) continue;
    top[name] = st.isSymbolicLink() ? await readlink(path) : 'dir';
  }
  return { top };
}

export interface Identity {
  uid: number;
  gid: number;
}

export interface SandboxPlan {
  /** Host path of the domain's root filesystem, bound read-write at /domain. */
  rootfs: string;
  /** The working directory inside the sandbox (under /domain). */
  workDir: string;
  /** Root mode: the uid/gid the command becomes. Absent: user-namespace mode (xenosd is not root). */
  identity?: Identity;
  /** Host path of the token file, bound read-only at /run/xenos/token. */
  tokenFile?: string;
  /** Extra host paths bound read-only at the same place. */
  readOnlyPaths?: string[];
  /** Host paths bound read-only at another place (a VM's image at /image). */
  readOnlyBinds?: { source: string; dest: string }[];
  /** Host device nodes the domain may use (`/dev/kvm`), bound at the same place. */
  devices?: string[];
  /** The sandbox's host name (UTS namespace). */
  hostname: string;
  /** Size of the private /tmp. */
  tmpfsBytes: number;
  /** An fd the caller opened for bwrap's JSON status (child pid, exit code). */
  statusFd?: number;
}

/** `setpriv` arguments that make the command the domain's own unprivileged user. */
export function dropPrivileges(identity: Identity): string[] {
  return [
    'setpriv',
    `--reuid=${identity.uid}`,
    `--regid=${identity.gid}`,
    '--clear-groups',
    '--no-new-privs',
    '--inh-caps=-all',
    '--bounding-set=-all',
    '--',
  ];
}

/** `--dir` for each missing ancestor of `path` (bwrap would make them 0700 as root: unreadable to the
 *  domain's uid), once each. */
function parents(path: string, made: Set<string>): string[] {
  const out: string[] = [];
  const parts = path.split('/').filter(Boolean);
  for (let i = 1; i < parts.length; i++) {
    const dir = `/${parts.slice(0, i).join('/')}`;
    if (made.has(dir)) continue;
    made.add(dir);
    out.push('--dir', dir);
  }
  return out;
}

/** The bwrap arguments for `plan` (without the program name and the command). */
export function bwrapArgs(plan: SandboxPlan, layout: HostLayout): string[] {
  const args = [
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--die-with-parent',
    '--new-session',
    '--hostname',
    plan.hostname,
  ];
  if (!plan.identity) args.push('--unshare-user', '--disable-userns');
  if (plan.statusFd !== undefined) args.push('--json-status-fd', String(plan.statusFd));
  args.push('--ro-bind', '/usr', '/usr');
  for (const [name, target] of Object.entries(layout.top)) {
    if (target === 'dir') args.push('--ro-bind', `/${name}`, `/${name}`);
    else args.push('--symlink', target, `/${name}`);
  }
  const made = new Set(['/usr']);
  for (const entry of ETC_ENTRIES) {
    args.push(...parents(`/etc/${entry}`, made), '--ro-bind-try', `/etc/${entry}`, `/etc/${entry}`);
  }
  for (const path of plan.readOnlyPaths ?? []) args.push(...parents(path, made), '--ro-bind', path, path);
  for (const { source, dest } of plan.readOnlyBinds ?? []) {
    args.push(...parents(dest, made), '--ro-bind', source, dest);
  }
  args.push('--proc', '/proc', '--dev', '/dev');
  for (const device of plan.devices ?? []) args.push('--dev-bind', device, device);
  args.push('--size', String(plan.tmpfsBytes), '--tmpfs', '/tmp');
  args.push('--bind', plan.rootfs, DOMAIN_MOUNT);
  if (plan.tokenFile) args.push(...parents(TOKEN_PATH, made), '--ro-bind', plan.tokenFile, TOKEN_PATH);
  args.push('--chdir', plan.workDir);
  return args;
}

/** Closes every fd above stderr, optionally changes directory, then runs the command: an fd xenosd
 *  inherited without close-on-exec (from whatever started it) must not reach a domain. bash, because dash
 *  cannot name fds above 9; it is essential on Debian and replaced by the command at once. */
const CLOSE_FDS = [
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
  'for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && exec {fd}>&-; done',
  'if [ -n "$0" ]; then cd -- "$0" || exit 126; fi',
  'exec "$@"',
].join('; ');

export function withOnlyStdio(command: string[], workDir = ''): string[] {
  return ['/bin/bash', '-c', CLOSE_FDS, workDir, ...command];
}

/** The whole command line that runs `command` in the sandbox `plan` describes. */
export function sandboxedCommand(
  bwrap: string,
  plan: SandboxPlan,
  layout: HostLayout,
  command: string[],
): string[] {
  return [
    bwrap,
    ...bwrapArgs(plan, layout),
    '--',
    ...(plan.identity ? dropPrivileges(plan.identity) : []),
    ...withOnlyStdio(command),
  ];
}

/**
 * The same, with bwrap's options read from an fd (`--args FD`: NUL-separated) instead of its command line:
 * the sandbox's pid 1 is bwrap, and its /proc/1/cmdline is readable inside — it should not tell the domain
 * where the data dir is. Returns the command line and the options to write to that fd.
 */
export function sandboxedCommandWithArgsFd(
  bwrap: string,
  plan: SandboxPlan,
  layout: HostLayout,
  command: string[],
  argsFd: number,
): { argv: string[]; options: string[] } {
  const [, ...rest] = sandboxedCommand(bwrap, plan, layout, command);
  const split = rest.indexOf('--');
  return { argv: [bwrap, '--args', String(argsFd), ...rest.slice(split)], options: rest.slice(0, split) };
}

/**
 * The command line that runs `command` inside the running sandbox whose pid 1 has host pid `initPid`, when
 * xenosd is root: its mount, PID, IPC and UTS namespaces, as the domain's user with no privileges, in
 * `workDir` (nsenter's own --wd opens the directory before it enters the mount namespace: it changes
 * inside). nsenter forks, so the command is a member of the sandbox's PID namespace. Not root, an
 * unprivileged nsenter cannot join the sandbox's namespaces (EPERM on setns even in its own user
 * namespace, nsenter 2.38 / bwrap 0.8): the caller runs the command in a new sandbox of the same plan.
 */
export function enterCommand(
  initPid: number,
  identity: Identity,
  workDir: string,
  command: string[],
): string[] {
  return [
    'nsenter',
    `--target=${initPid}`,
    '--mount',
    '--pid',
    '--ipc',
    '--uts',
    '--',
    ...dropPrivileges(identity),
    ...withOnlyStdio(command, workDir),
  ];
}
