// Preparing a process-driver domain's files (`driver.prepare`, and the first half of every start): its
// directory, its rootfs made from the image copy-on-write where the host allows (rootfs.ts), its record;
// a no-op when the domain already holds this image's digest (but an overlay is mounted again after a
// reboot). As root each domain gets its own uid and its rootfs is given to it (through an overlay only
// the metadata is copied up: the image's bytes stay shared).

import { mkdir, stat } from 'node:fs/promises';
import type { DomainSpec } from '../driver.ts';
import { InvalidDomainSpecError, PrepareError } from '../errors.ts';
import { chownTree, type Sandbox } from '../sandbox/sandbox.ts';
import { type DiskModeChoice, type DiskModes, probeDiskModes } from './disk-modes.ts';
import { type DomainPaths, type DomainRecord, readRecord, recordText, writeRecord } from './domain-record.ts';
import { domainAlive } from './domain-state.ts';
import { ensureRootfsMounted, materializeRootfs } from './rootfs.ts';

/** How the driver makes rootfs: what the host allows (probed once) and what the operator chose. */
export interface DiskContext {
  modes(): Promise<DiskModes>;
  choice: DiskModeChoice;
}

/** A DiskContext probing `domainsDir` on first use, once. */
export function diskContext(domainsDir: string, choice: DiskModeChoice): DiskContext {
  let probed: Promise<DiskModes> | undefined;
  return {
    modes: () => {
      probed ??= probeDiskModes(domainsDir);
      return probed;
    },
    choice,
  };
}

export async function prepareDomainFiles(
  paths: DomainPaths,
  spec: DomainSpec,
  sandbox: Sandbox | undefined,
  disks: DiskContext,
  signal?: AbortSignal,
): Promise<DomainRecord> {
  if (!spec.process?.command?.length) {
    throw new InvalidDomainSpecError(
      spec.id,
      'the process driver needs a command to run',
      'spec.process.command',
    );
  }
  const digest = spec.image.digest ?? '';
  const existing = await readRecord(paths);
  const rootfsThere = await stat(paths.rootfs).then(
    () => true,
    () => false,
  );
  if (existing && rootfsThere && existing.preparedDigest === digest) {
    // Prepared already (a start right after its prepare, a restart): written again only if it changed.
    try {
      await ensureRootfsMounted(spec.image, paths, existing.disk, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new PrepareError(spec.id, `mounting its overlay again: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const stored = recordText(existing);
    existing.spec = spec;
    await ensureIdentity(existing, paths, false, sandbox);
    if (recordText(existing) !== stored) await writeRecord(paths, existing);
    return existing;
  }
  await refuseImageChangeWhileRunning(paths, existing, spec, digest);
  let disk: DomainRecord['disk'];
  try {
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    disk = await materializeRootfs(spec.image, paths, await disks.modes(), disks.choice, signal);
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new PrepareError(
      spec.id,
      `making its files from image ${spec.image.path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const rec = preparedRecord(spec, digest, existing, disk);
  await ensureIdentity(rec, paths, true, sandbox);
  await writeRecord(paths, rec);
  return rec;
}

/** Whether the run a record names still runs: the supervisor's process for process-run domains. */
export type RunAlive = (paths: DomainPaths, run: NonNullable<DomainRecord['run']>) => Promise<boolean>;

/** A domain's files are made again from another image only while it does not run (`alive`: how the
 *  driver tells; a Xen domain is not a process here). */
export async function refuseImageChangeWhileRunning(
  paths: DomainPaths,
  existing: DomainRecord | undefined,
  spec: DomainSpec,
  digest: string,
  alive: RunAlive = domainAlive,
): Promise<void> {
  if (existing?.run && (await alive(paths, existing.run))) {
    throw new PrepareError(
      spec.id,
      `it runs from image ${existing.preparedDigest || '(no digest)'} and the spec now asks for ${digest || '(no digest)'}; stop it before changing its image`,
    );
  }
}

/** The record of a domain just prepared from `digest`, keeping what an earlier record of it held (its host
 *  ports, restarts, run and uid). Both drivers write it. */
export function preparedRecord(
  spec: DomainSpec,
  digest: string,
  existing: DomainRecord | undefined,
  disk: DomainRecord['disk'],
): DomainRecord {
  return {
    version: 1,
    spec,
    preparedDigest: digest,
    preparedAt: new Date().toISOString(),
    ports: existing?.ports ?? {},
    restartCount: existing?.restartCount ?? 0,
    run: existing?.run,
    identity: existing?.identity,
    disk,
  };
}

/** Gives the domain its own uid (root mode) and `owned` (its files) to that uid: when they are new, or the
 *  domain has no uid yet (made unsandboxed, or moved here from another host). `then` runs after the chown
 *  (the QEMU driver takes its monitor directory back). Both drivers use it. */
export async function giveOwnUid(
  rec: DomainRecord,
  dir: string,
  owned: string,
  fresh: boolean,
  sandbox: Sandbox | undefined,
  then?: () => Promise<unknown>,
): Promise<void> {
  if (sandbox?.mode !== 'uid') return;
  const had = rec.identity;
  rec.identity = await sandbox.identityFor(dir, rec.spec.id);
  if (!fresh && had?.uid === rec.identity?.uid) return;
  try {
    await chownTree(owned, rec.identity!);
    await then?.();
  } catch (err) {
    throw new PrepareError(
      rec.spec.id,
      `giving its files to uid ${rec.identity!.uid}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** The process driver's use of giveOwnUid: its rootfs. */
export function ensureIdentity(
  rec: DomainRecord,
  paths: DomainPaths,
  freshRootfs: boolean,
  sandbox: Sandbox | undefined,
): Promise<void> {
  return giveOwnUid(rec, paths.dir, paths.rootfs, freshRootfs, sandbox);
}
