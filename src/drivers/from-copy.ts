// A failover's first prepare of a domain on this host, for every driver that keeps failover copies (the
// process and QEMU drivers): made from the copy of its disk layer another host kept (DomainSpec.fromCopy)
// when it has one and no files here yet, else from the image — and from the image too when the copy cannot
// be used, which its disk report and the log then say. How a driver makes a domain from a copy is its own
// (process/layer-copy.ts, qemu/layer-copy.ts).

import type { Log } from '../log/logger.ts';
import type { DomainSpec, LayerCopySource } from './driver.ts';
import { type DomainPaths, type DomainRecord, readRecord, writeRecord } from './process/domain-record.ts';

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
