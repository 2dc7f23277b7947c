// Failover copies of a process-driver domain (Driver.copyLayer, DomainSpec.fromCopy): the domain's
// directory as a cold move sends it (its rootfs as the domain sees it, its record), taken while the domain
// runs and kept by another host; a domain that fails over there is made from it instead of from the image.
// Its logs stay behind (the new host's run writes its own). Taken from a running domain, each file is as
// tar read it: a copy is not a snapshot across files, so a service that must find a consistent state
// writes it atomically (a new file, then rename).

import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import type { DomainSpec, LayerCopySource } from '../driver.ts';
import { DomainNotFoundError, PrepareError } from '../errors.ts';
import { installDomainDir, type MigrationHost, sendDomainDir } from './cold-migration.ts';
import { type DomainRecord, readRecord } from './domain-record.ts';

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
