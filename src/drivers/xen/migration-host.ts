// What the Xen driver lends its migrations (live-migration.ts, saved-migration.ts): the domain's record,
// disks and address, `xl migrate` and `xl save` under the domain's lock with its disk backend held, fresh
// files for a domain arriving (a stopped copy there before goes, the address it keeps is taken), and the
// domain made from a live move or a checkpoint. Built from the driver's own pieces, so the driver itself
// keeps only the wiring.

import { join } from 'node:path';
import type { DomainInfo, DomainSpec } from '../driver.ts';
import { MigrationError } from '../errors.ts';
import { type DomainRecord, readRecord, writeRecord } from '../process/domain-record.ts';
import { QmpClient } from '../qemu/qmp.ts';
import { macAddress } from '../vm-shape.ts';
import type { XenPaths } from './domain-paths.ts';
import type { LiveMigrationHost } from './live-migration.ts';
import type { SavedMigrationHost } from './saved-migration.ts';
import { userNetwork, type XenNetwork } from './xen-network.ts';
import { XL_RUN_DIR, type Xl, type XlMake } from './xl.ts';
import { XEN_OUI, type XenDisk } from './xl-config.ts';

/** What xl renames the source domain to once the destination said ready (xl_migrate.c). */
const MIGRATED_AWAY_SUFFIX = '--migratedaway';

/** The driver's pieces the migration hosts are made of. */
export interface XenDriverParts {
  xl: Xl;
  network: XenNetwork;
  paths(id: string): XenPaths;
  withLock<T>(id: string, fn: () => Promise<T>): Promise<T>;
  /** Under the lock: the domain's record and disks for `spec` (prepareVmFiles). */
  prepareFiles(spec: DomainSpec, signal?: AbortSignal): Promise<DomainRecord>;
  /** Under the lock: the domain's ports, its address `address` and its xl config written; returns it. */
  stage(spec: DomainSpec, rec: DomainRecord, address?: string): Promise<string>;
  /** Under the lock: the staged domain made by `make`, given its token and unpaused; recorded, relayed. */
  bring(spec: DomainSpec, rec: DomainRecord, make: XlMake, signal?: AbortSignal): Promise<DomainInfo>;
  /** Under the lock: forces the domain off and removes its files. */
  destroyLocked(id: string, signal?: AbortSignal): Promise<void>;
  destroy(id: string): Promise<void>;
  disksOf(spec: DomainSpec): Promise<XenDisk[]>;
}

/** Stops (`stop`) or restarts (`cont`) the QEMU that serves a domain's disks (qdisk): `stop` flushes
 *  what it holds of them to their files first. */
async function diskBackend(domid: number, command: 'stop' | 'cont'): Promise<void> {
  const qmp = await QmpClient.connect(`${XL_RUN_DIR}/qmp-libxl-${domid}`, {
    domainId: `xen domain ${domid}`,
  });
  try {
    await qmp.execute(command);
  } finally {
    await qmp.close();
  }
}

/** The hosts of a live move (PVH) and of a saved one (save, copy, restore). */
export function migrationHosts(d: XenDriverParts): { live: LiveMigrationHost; saved: SavedMigrationHost } {
  /** Under the lock: fresh files for an incoming `spec`: a stopped copy there before goes; the address it
   *  keeps is taken. */
  const prepareIncoming = async (
    spec: DomainSpec,
    address?: string,
    signal?: AbortSignal,
  ): Promise<DomainRecord> => {
    if (await readRecord(d.paths(spec.id))) await d.destroyLocked(spec.id, signal);
    const rec = await d.prepareFiles(spec, signal);
    if (address && userNetwork(spec)) {
      await d.network.attach(spec.id, macAddress(spec.id, XEN_OUI), d.paths(spec.id).dir, address);
    }
    return rec;
  };

  /** What both kinds of move ask of the driver alike. */
  const base: Pick<LiveMigrationHost, 'readRecord' | 'disksOf' | 'addressOf' | 'destroy'> = {
    readRecord: (id) => readRecord(d.paths(id)),
    disksOf: (spec) => d.disksOf(spec),
    addressOf: (id) => d.network.addressOf(d.paths(id).dir),
    destroy: (id) => d.destroy(id),
  };

  const live: LiveMigrationHost = {
    ...base,
    // A source whose `xl migrate` was killed after the destination said ready is left renamed
    // NAME--migratedaway (xl renames it before it says go): that copy goes too.
    removeSource: async (id) => {
      await d.xl.destroy(`${id}${MIGRATED_AWAY_SUFFIX}`);
      await d.destroy(id);
    },
    send: (id, config, rune, stop) => d.withLock(id, () => d.xl.migrate(id, config, rune, { signal: stop })),
    holdDisks: async (id) => {
      const paths = d.paths(id);
      const rec = await readRecord(paths);
      if (!rec?.run) throw new MigrationError(id, 'it does not run here');
      rec.run.stopRequestedAt = new Date().toISOString();
      await writeRecord(paths, rec);
      await diskBackend(rec.run.pid, 'stop');
    },
    releaseDisks: async (id) => {
      const paths = d.paths(id);
      const rec = await readRecord(paths);
      if (!rec?.run) return;
      await diskBackend(rec.run.pid, 'cont');
      delete rec.run.stopRequestedAt;
      await writeRecord(paths, rec);
    },
    forget: (id) => d.network.unforward(id),
    prepareIncoming: (spec, address, signal) =>
      d.withLock(spec.id, async () => {
        const rec = await prepareIncoming(spec, address, signal);
        const config = await d.stage(spec, rec, address);
        await writeRecord(d.paths(spec.id), rec);
        return config;
      }),
    receive: (spec, stream, signal) =>
      d.withLock(spec.id, async () => {
        const rec = await readRecord(d.paths(spec.id));
        if (!rec) throw new MigrationError(spec.id, 'its prepared files are gone');
        const make = {
          verb: 'migrate-receive' as const,
          run: (s?: AbortSignal) => d.xl.migrateReceive(stream, { signal: s }),
        };
        const info = await d.bring(spec, rec, make, signal);
        await d.xl.adoptIncomingLogs(spec.id);
        return info;
      }),
  };

  const saved: SavedMigrationHost = {
    ...base,
    checkpointPath: (id) => join(d.paths(id).vm, 'checkpoint'),
    save: (id, file, signal) =>
      d.withLock(id, async () => {
        const paths = d.paths(id);
        const rec = await readRecord(paths);
        if (!rec?.run) throw new MigrationError(id, 'it does not run here');
        await d.network.unforward(id);
        rec.run.stopRequestedAt = new Date().toISOString();
        await writeRecord(paths, rec);
        await d.xl.save(id, file, { signal });
      }),
    prepareFresh: (spec, address, signal) =>
      d.withLock(spec.id, async () => {
        await prepareIncoming(spec, address, signal);
      }),
    restore: (spec, file, signal) =>
      d.withLock(spec.id, async () => {
        const rec = await d.prepareFiles(spec, signal);
        const paths = d.paths(spec.id);
        await d.stage(spec, rec, d.network.addressOf(paths.dir));
        const make = {
          verb: 'restore' as const,
          run: (s?: AbortSignal) => d.xl.restorePaused(paths.config, file, { signal: s }),
        };
        return d.bring(spec, rec, make, signal);
      }),
  };

  return { live, saved };
}
