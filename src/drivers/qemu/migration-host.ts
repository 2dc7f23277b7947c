// What the QEMU driver lends its migrations (live-migration.ts, cold-migration.ts): the domain's files
// and monitor, a start that waits for an incoming migration, fresh files for a domain arriving, and the
// stops. Built from the driver's own pieces, so the driver itself keeps only the wiring.

import type { DomainInfo, DomainSpec, SignalOptions, StopOptions } from '../driver.ts';
import { DomainNotFoundError, MigrationError } from '../errors.ts';
import { type DomainRecord, readRecord } from '../process/domain-record.ts';
import { domainAlive } from '../process/domain-state.ts';
import { resolveVmImage } from '../vm-image.ts';
import type { ColdMigrationHost } from './cold-migration.ts';
import { plannedDisks } from './prepare-vm.ts';
import type { QmpClient } from './qmp.ts';
import type { VmPaths } from './vm-layout.ts';

/** The driver's pieces a migration host is made of. */
export interface QemuDriverParts {
  vmsDir: string;
  paths(id: string): VmPaths;
  withLock<T>(id: string, fn: () => Promise<T>): Promise<T>;
  /** Under the lock: forces the domain off and removes its files. */
  destroyLocked(id: string, signal?: AbortSignal): Promise<void>;
  /** Under the lock: the domain's files for `spec` (prepareVm). */
  prepare(paths: VmPaths, spec: DomainSpec, signal?: AbortSignal): Promise<DomainRecord>;
  /** Under the lock: starts QEMU paused, waiting for an incoming migration. */
  launchIncoming(rec: DomainRecord, paths: VmPaths, signal?: AbortSignal): Promise<DomainRecord>;
  qmp(id: string, options: SignalOptions): Promise<QmpClient>;
  stopDomain(id: string, options: StopOptions): Promise<DomainInfo | undefined>;
  startDomain(spec: DomainSpec, options: SignalOptions): Promise<DomainInfo>;
  destroy(id: string): Promise<void>;
  inspect(id: string): Promise<DomainInfo | undefined>;
  /** QEMU's last complaint on the domain's stderr. */
  complaint(id: string): Promise<string | undefined>;
}

export function migrationHost(d: QemuDriverParts): ColdMigrationHost {
  /** Under the lock: what a stopped earlier copy left is removed — fresh overlays always, since a mirror
   *  copies only what the source's overlay holds and anything an older overlay here held would show
   *  through — and the files for `spec` made. Never over a running guest. */
  const freshFiles = async (spec: DomainSpec, signal?: AbortSignal) => {
    const paths = d.paths(spec.id);
    const here = await readRecord(paths);
    if (here?.run && (await domainAlive(paths, here.run))) {
      throw new MigrationError(spec.id, 'a guest with this id already runs on this host');
    }
    if (here) await d.destroyLocked(spec.id, signal);
    return { paths, rec: await d.prepare(paths, spec, signal) };
  };
  return {
    paths: d.paths,
    readRecord: (id) => readRecord(d.paths(id)),
    qmp: (id, signal) => d.qmp(id, { signal }),
    disksOf: async (spec) => plannedDisks(spec, await resolveVmImage(spec)),
    startIncoming: (spec, signal) =>
      d.withLock(spec.id, async () => {
        const { paths, rec } = await freshFiles(spec, signal);
        return d.launchIncoming(rec, paths, signal);
      }),
    prepareFresh: (spec, signal) => d.withLock(spec.id, async () => (await freshFiles(spec, signal)).rec),
    stopNow: async (id) => {
      await d.stopDomain(id, { graceMs: 0 });
    },
    stopGuest: async (id, signal) => {
      await d.stopDomain(id, { signal });
    },
    start: (spec, signal) => d.startDomain(spec, { signal }),
    destroy: (id) => d.destroy(id),
    complaint: (id) => d.complaint(id),
    describe: async (id) => {
      const info = await d.inspect(id);
      if (!info) throw new DomainNotFoundError(id, d.vmsDir);
      return info;
    },
  };
}
