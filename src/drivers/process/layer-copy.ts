// Failover copies of a process-driver domain (Driver.copyLayer, DomainSpec.fromCopy): the domain's
// directory as a cold move sends it (its rootfs as the domain sees it, its record), taken while the domain
// runs and kept by another host; a domain that fails over there is made from it instead of from the image.
// Its logs stay behind (the new host's run writes its own). Taken from a running domain, each file is as
// tar read it: a copy is not a snapshot across files, so a service that must find a consistent state
// writes it atomically (a new file, then rename).

import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import type { Log } from '../../log/logger.ts';
import type { DomainSpec, LayerCopySource } from '../driver.ts';
import { DomainNotFoundError, PrepareError } from '../errors.ts';
import { installDomainDir, type MigrationHost, sendDomainDir } from './cold-migration.ts';
import { type DomainPaths, type DomainRecord, readRecord, writeRecord } from './domain-record.ts';

/** Writes the copy of domain `id` to `out` (and ends it); resolves the bytes written. */
export async function copyLayer(
  host: Pick<MigrationHost, 'domainsDir' | 'paths'>,
  id: string,
  out: Writable,
  signal?: AbortSignal,
): Promise<{ bytes: number }> {
  const paths = host.paths(id);
  if (!(await readRecord(paths))) throw new DomainNotFoundError(id, host.domainsDir);
  const bytes = await sendDomainDir(paths.dir, out, signal, undefined, { skip: ['logs'], changing: true });
  return { bytes };
}

/** The record of `spec`'s domain made here from `copy`, its files in place; the caller gives it this
 *  host's identity and writes it. Called under the domain's lock, only when the domain has no files here. */
export async function installCopy(
  host: Pick<MigrationHost, 'domainsDir' | 'paths'>,
  spec: DomainSpec,
  copy: LayerCopySource,
  signal?: AbortSignal,
): Promise<DomainRecord> {
  try {
    const rec = await installDomainDir(host, spec, createReadStream(copy.path), signal);
    return {
      ...rec,
      restartCount: 0,
      disk: {
        mode: 'Copy',
        message: `made from the copy of its disk layer taken on host ${copy.host} at ${copy.takenAt} (its files came whole, not over an image of this host)`,
        fromCopy: { host: copy.host, takenAt: copy.takenAt },
      },
    };
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new PrepareError(
      spec.id,
      `making its files from the copy ${copy.path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** A failover's first prepare of `spec` on this host: from its copy when it has one and no files here yet,
 *  else (or when the copy cannot be used: said in its disk report and logged) from the image. Both drivers
 *  run their prepare through it, under the domain's lock. */
export async function prepareFromCopyOrImage(
  paths: DomainPaths,
  spec: DomainSpec,
  steps: {
    /** Makes the domain's files from the copy; throws, leaving no record, when it cannot. */
    fromCopy(copy: LayerCopySource): Promise<DomainRecord>;
    fromImage(): Promise<DomainRecord>;
    log: Log;
  },
  signal?: AbortSignal,
): Promise<DomainRecord> {
  const copy = spec.fromCopy;
  if (!copy || (await readRecord(paths))) return steps.fromImage();
  try {
    return await steps.fromCopy(copy);
  } catch (err) {
    if (signal?.aborted) throw err;
    const why = `the copy of its disk layer taken on host ${copy.host} at ${copy.takenAt} could not be used (${(err as Error).message})`;
    steps.log.warn({ err, domain: spec.id }, `domain ${spec.id}: ${why}: made from the image instead`);
    const rec = await steps.fromImage();
    if (rec.disk) {
      rec.disk = { ...rec.disk, message: `${rec.disk.message}; ${why}` };
      await writeRecord(paths, rec);
    }
    return rec;
  }
}
