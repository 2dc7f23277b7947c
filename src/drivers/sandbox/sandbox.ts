// The domain sandbox of a driver that runs domains as host processes: whether bubblewrap works here (probed
// with a real throw-away sandbox, re-probed while it fails so that `npm run setup` fixes a running host),
// each domain's own uid (leased machine-wide from a range when xenosd is root, see host-leases.ts), giving
// a domain's files to that uid, and the command lines that start a domain in its sandbox or run a command
// inside a running one (bwrap-plan.ts). What a domain sees and why: bwrap-plan.ts and
// src/drivers/process/README.md.

import { execFile } from 'node:child_process';
import { lchown, mkdtemp, opendir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SandboxUnavailableError, UidRangeExhaustedError } from '../errors.ts';
import { type HostLeases, runningUids } from '../host-leases.ts';
import {
  DOMAIN_MOUNT,
  type HostLayout,
  hostLayout,
  type Identity,
  type SandboxPlan,
  sandboxedCommand,
} from './bwrap-plan.ts';

const run = promisify(execFile);

export interface UidRange {
  first: number;
  last: number;
}

/** A high range no distribution gives to users or system services (systemd documents 1879048192–2147483647
 *  as unused), nor to systemd-nspawn's container ranges below it. */
export const DEFAULT_UID_RANGE: UidRange = { first: 2_000_000_000, last: 2_000_065_535 };

/** `FIRST-LAST` → a range; throws a message for people. */
export function parseUidRange(text: string): UidRange {
  const m = /^(\d+)-(\d+)$/.exec(text.trim());
  const first = m ? Number(m[1]) : Number.NaN;
  const last = m ? Number(m[2]) : Number.NaN;
  if (!m || first < 1000 || last < first || last >= 4_294_967_295) {
    throw new Error(
      `expected FIRST-LAST with 1000 <= FIRST <= LAST < 4294967295 (e.g. ${formatUidRange(DEFAULT_UID_RANGE)}), got "${text}"`,
    );
  }
  return { first, last };
}

export function formatUidRange(range: UidRange): string {
  return `${range.first}-${range.last}`;
}

export interface SandboxComponents {
  leases: HostLeases;
}

export interface SandboxInit {
  /** The bubblewrap binary. Default `bwrap` (on PATH). */
  bwrap?: string;
  /** Uids for domains when xenosd is root. Default DEFAULT_UID_RANGE. */
  uidRange?: UidRange;
  /** Host paths every domain may read (read-only, at the same place). */
  readOnlyPaths?: string[];
  /** After a failed probe, how long before the next start probes again. Default 5 s. */
  reprobeMs?: number;
}

export interface SandboxStatus {
  usable: boolean;
  /** Why not, when not usable. */
  reason?: string;
  /** `bubblewrap 0.8.0`, when usable. */
  version?: string;
}

export class Sandbox {
  readonly bwrap: string;
  readonly uidRange: UidRange;
  readonly readOnlyPaths: string[];
  /** `uid`: xenosd is root, each domain gets its own uid. `userns`: a user namespace with xenosd's uid. */
  readonly mode: 'uid' | 'userns';
  private readonly leases: HostLeases;
  private readonly reprobeMs: number;
  private status?: { at: number; result: Promise<SandboxStatus> };
  private layout?: Promise<HostLayout>;

  constructor(components: SandboxComponents, init: SandboxInit = {}) {
    this.leases = components.leases;
    this.bwrap = init.bwrap ?? 'bwrap';
    this.uidRange = init.uidRange ?? DEFAULT_UID_RANGE;
    this.readOnlyPaths = init.readOnlyPaths ?? [];
    this.reprobeMs = init.reprobeMs ?? 5000;
    this.mode = process.getuid?.() === 0 ? 'uid' : 'userns';
  }

  hostLayout(): Promise<HostLayout> {
    this.layout ??= hostLayout();
    return this.layout;
  }

  /** Whether a sandbox can be made here: a real one runs `true`. Cached while it works; a failure is probed
   *  again after `reprobeMs`. Never throws. */
  probe(): Promise<SandboxStatus> {
    const now = Date.now();
    if (this.status) {
      const { at, result } = this.status;
      const stale = result.then((s) => !s.usable && now - at >= this.reprobeMs);
      return stale.then((again) => (again ? this.reprobe(now) : result));
    }
    return this.reprobe(now);
  }

  private reprobe(now: number): Promise<SandboxStatus> {
    const result = this.runProbe();
    this.status = { at: now, result };
    return result;
  }

  private async runProbe(): Promise<SandboxStatus> {
    let version: string;
    try {
      version = (await run(this.bwrap, ['--version'], { timeout: 10_000 })).stdout.trim();
    } catch (err) {
      return { usable: false, reason: toolFailure(this.bwrap, err, 'bubblewrap') };
    }
    for (const tool of this.mode === 'uid' ? ['setpriv', 'nsenter'] : ['nsenter']) {
      try {
        await run(tool, ['--version'], { timeout: 10_000 });
      } catch (err) {
        return { usable: false, reason: toolFailure(tool, err, 'util-linux') };
      }
    }
    const dir = await mkdtemp(join(tmpdir(), 'xenos-sandbox-probe-'));
    try {
      const plan: SandboxPlan = {
        rootfs: dir,
        workDir: DOMAIN_MOUNT,
        hostname: 'xenos-probe',
        tmpfsBytes: 1024 * 1024,
        readOnlyPaths: this.readOnlyPaths,
        identity: this.mode === 'uid' ? { uid: 65534, gid: 65534 } : undefined,
      };
      const [cmd, ...args] = sandboxedCommand(this.bwrap, plan, await this.hostLayout(), [
        '/bin/sh',
        '-c',
        'exit 0',
      ]);
      await run(cmd, args, { timeout: 10_000 });
      return { usable: true, version };
    } catch (err) {
      const e = err as { stderr?: string; message?: string };
      const detail = (e.stderr || e.message || String(err)).trim().split('\n')[0];
      return { usable: false, reason: `${version} cannot make a sandbox here: ${detail}` };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Throws SandboxUnavailableError naming the domain when no sandbox can be made. */
  async ensureUsable(domainId: string): Promise<void> {
    const status = await this.probe();
    if (!status.usable) throw new SandboxUnavailableError(domainId, status.reason ?? 'unknown reason');
  }

  /** The uid/gid a domain owned by `owner` (its directory) runs as: its lease, or a new one. Undefined in
   *  user-namespace mode. */
  async identityFor(owner: string, domainId: string): Promise<Identity | undefined> {
    if (this.mode !== 'uid') return undefined;
    const { first, last } = this.uidRange;
    let uid = this.leases.takeFromRange('uid', first, last, owner);
    if (uid === undefined) {
      const running = await runningUids();
      uid = this.leases.takeFromRange('uid', first, last, owner, { inUse: (u) => running.has(u) });
    }
    if (uid === undefined) throw new UidRangeExhaustedError(domainId, formatUidRange(this.uidRange));
    return { uid, gid: uid };
  }
}

function toolFailure(tool: string, err: unknown, pkg: string): string {
  const e = err as NodeJS.ErrnoException & { stderr?: string };
  if (e.code === 'ENOENT') return `${tool} is not installed (Debian package ${pkg})`;
  return `${tool} --version failed: ${(e.stderr || e.message || String(err)).trim().split('\n')[0]}`;
}

/** Gives `dir` and everything under it (links themselves, not their targets) to `identity`. */
export async function chownTree(dir: string, identity: Identity): Promise<void> {
  await lchown(dir, identity.uid, identity.gid);
  for await (const entry of await opendir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(path, identity);
    else await lchown(path, identity.uid, identity.gid);
  }
}
