// The sandbox's bind-mount plan as bwrap arguments: what a domain is shown (its rootfs read-write at
// /domain, system paths read-only, its token read-only, fresh /tmp, /proc, /dev) and nothing else, with the
// identity switch (setpriv as root, a user namespace otherwise), and how exec enters a running sandbox.

import { describe, expect, it } from 'vitest';
import {
  bwrapArgs,
  enterCommand,
  type HostLayout,
  type SandboxPlan,
  sandboxedCommand,
  withOnlyStdio,
} from '../../../src/drivers/sandbox/bwrap-plan.ts';
import { parseUidRange } from '../../../src/drivers/sandbox/sandbox.ts';

const merged: HostLayout = { top: { bin: 'usr/bin', lib: 'usr/lib', lib64: 'usr/lib64', sbin: 'usr/sbin' } };
const split: HostLayout = { top: { bin: 'dir', lib: 'dir' } };

const plan: SandboxPlan = {
  rootfs: '/var/lib/xenos/domains/xenos-a/rootfs',
  workDir: '/domain/app',
  identity: { uid: 2000000007, gid: 2000000007 },
  tokenFile: '/var/lib/xenos/domains/xenos-a/run/token',
  hostname: 'xenos-a',
  tmpfsBytes: 1024,
  statusFd: 3,
};

/** The (source, destination) pairs of one kind of bind. */
function binds(args: string[], flag: string): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < args.length; i++) if (args[i] === flag) out.push([args[i + 1], args[i + 2]]);
  return out;
}

describe('the bwrap plan', () => {
  it('shows the domain its rootfs read-write, its token and the system read-only, and nothing of the data dir', () => {
    const args = bwrapArgs(plan, merged);
    expect(binds(args, '--bind')).toEqual([[plan.rootfs, '/domain']]);
    const ro = binds(args, '--ro-bind');
    expect(ro).toContainEqual(['/usr', '/usr']);
    expect(ro).toContainEqual([plan.tokenFile, '/run/xenos/token']);
    // Every host path shown is a system path, the rootfs or the token: none else of /var/lib/xenos.
    const sources = [...ro, ...binds(args, '--ro-bind-try'), ...binds(args, '--bind')].map(([s]) => s);
    for (const s of sources) {
      expect(s === plan.rootfs || s === plan.tokenFile || /^\/(usr|etc)\//.test(`${s}/`), s).toBe(true);
    }
    expect(binds(args, '--ro-bind-try').map(([s]) => s)).not.toContain('/etc/shadow');
    expect(args).toEqual(expect.arrayContaining(['--unshare-pid', '--die-with-parent', '--new-session']));
    expect(args.join(' ')).toContain('--proc /proc --dev /dev --size 1024 --tmpfs /tmp');
    expect(args.join(' ')).toContain('--chdir /domain/app');
    expect(args.join(' ')).toContain('--json-status-fd 3');
    expect(args).not.toContain('--share-net');
  });

  it('makes the parents of its binds itself, so they are not left 0700 and unreadable to the domain', () => {
    const args = bwrapArgs({ ...plan, readOnlyPaths: ['/opt/node/bin'] }, merged).join(' ');
    expect(args.indexOf('--dir /etc')).toBeLessThan(args.indexOf('/etc/resolv.conf'));
    expect(args).toContain('--dir /opt --dir /opt/node --ro-bind /opt/node/bin /opt/node/bin');
    expect(args).toContain('--dir /run --dir /run/xenos --ro-bind');
    expect(args.match(/--dir \/etc /g)).toHaveLength(1);
  });

  it('follows the host layout of /bin and /lib: links on merged-/usr hosts, read-only binds otherwise', () => {
    expect(binds(bwrapArgs(plan, merged), '--symlink')).toContainEqual(['usr/bin', '/bin']);
    expect(binds(bwrapArgs(plan, split), '--ro-bind')).toContainEqual(['/bin', '/bin']);
    expect(binds(bwrapArgs(plan, split), '--symlink')).toEqual([]);
  });

  it('as root: bwrap keeps no user namespace and the command becomes the domain uid with no privileges', () => {
    const cmd = sandboxedCommand('bwrap', plan, merged, ['node', 'server.mjs']);
    expect(cmd).not.toContain('--unshare-user');
    const tail = cmd.slice(cmd.indexOf('--') + 1);
    expect(tail).toEqual([
      'setpriv',
      '--reuid=2000000007',
      '--regid=2000000007',
      '--clear-groups',
      '--no-new-privs',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--',
      ...withOnlyStdio(['node', 'server.mjs']),
    ]);
    expect(withOnlyStdio(['node'], '/domain')).toEqual([
      '/bin/bash',
      '-c',
      expect.stringContaining('exec "$@"'),
      '/domain',
      'node',
    ]);
  });

  it('not root: a user namespace that may make no further ones, and the command with only its stdio', () => {
    const cmd = sandboxedCommand('bwrap', { ...plan, identity: undefined }, merged, ['node', 'server.mjs']);
    expect(cmd).toEqual(expect.arrayContaining(['--unshare-user', '--disable-userns']));
    expect(cmd.slice(cmd.indexOf('--') + 1)).toEqual(withOnlyStdio(['node', 'server.mjs']));
  });

  it('exec enters the running sandbox by its pid 1, as the domain uid, in its working dir', () => {
    expect(enterCommand(4242, plan.identity!, '/domain/app', ['sh', '-c', 'true'])).toEqual([
      'nsenter',
      '--target=4242',
      '--mount',
      '--pid',
      '--ipc',
      '--uts',
      '--',
      'setpriv',
      '--reuid=2000000007',
      '--regid=2000000007',
      '--clear-groups',
      '--no-new-privs',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--',
      ...withOnlyStdio(['sh', '-c', 'true'], '/domain/app'),
    ]);
  });

  it('parses the uid range flag, refusing ranges that reach system or special uids', () => {
    expect(parseUidRange('2000000000-2000065535')).toEqual({ first: 2000000000, last: 2000065535 });
    for (const bad of ['0-100', '5000-4000', 'abc', '100000-4294967295', '']) {
      expect(() => parseUidRange(bad), bad).toThrow(/expected FIRST-LAST/);
    }
  });
});
