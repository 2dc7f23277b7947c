// Cold migration of a QEMU guest: the source stops it (the ACPI power button, then force after the grace
// period), sends its machine shape on `control` and each writable overlay whole on its own `disk` stream;
// the destination makes fresh files for the spec on its own copy of the base, puts the received
// overlays in place of its empty ones, starts the guest and answers `started`. The pause is from the
// stop's start to that answer. The source's stopped copy stays for the caller to roll back or destroy.

import { rm } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import type {
  DomainInfo,
  DomainSpec,
  MigrateOutOptions,
  MigrationReport,
  MigrationTransport,
  SignalOptions,
} from '../driver.ts';
import { MigrationError } from '../errors.ts';
import { CONTROL_LABEL, CONTROL_VERSION, ControlChannel, DISK_LABEL } from '../migration-control.ts';
import { overlayShapes, receiveFile, sendFiles } from '../migration-files.ts';
import type { DomainRecord } from '../process/domain-record.ts';
import { guestSize } from '../vm-shape.ts';
import type { LiveMigrationHost } from './live-migration.ts';

export interface ColdMigrationHost extends LiveMigrationHost {
  /** Stops the guest politely (forced after the driver's grace period). */
  stopGuest(id: string, signal?: AbortSignal): Promise<void>;
  /** Fresh files for `spec` (anything stopped that was there is removed), not started. */
  prepareFresh(spec: DomainSpec, signal?: AbortSignal): Promise<DomainRecord>;
  start(spec: DomainSpec, signal?: AbortSignal): Promise<DomainInfo>;
}

const ANSWER_TIMEOUT_MS = 120_000;

export async function migrateOutCold(
  host: ColdMigrationHost,
  id: string,
  transport: MigrationTransport,
  options: MigrateOutOptions = {},
): Promise<MigrationReport> {
  const signal = options.signal;
  const rec = await host.readRecord(id);
  if (!rec) throw new MigrationError(id, 'no such domain on this host');
  const paths = host.paths(id);
  const began = Date.now();
  await host.stopGuest(id, signal);
  const disks = await host.disksOf(rec.spec);
  const shapes = await overlayShapes(
    disks.map((d) => ({ ...d, path: paths.disk(d.name) })),
    signal,
  );
  const control = new ControlChannel(await transport.open(CONTROL_LABEL, { signal }));
  try {
    const { memoryMiB, vcpus } = guestSize(rec.spec);
    control.send({ type: 'hello', version: CONTROL_VERSION, mode: 'cold', memoryMiB, vcpus, disks: shapes });
    const answer = await control.next(['ready', 'refuse'], ANSWER_TIMEOUT_MS, signal);
    if (answer.type === 'refuse') throw new Error(`the destination refused: ${answer.reason}`);
    const sent = await sendFiles(
      transport,
      disks.filter((x) => !x.readOnly).map((d) => ({ label: DISK_LABEL, path: paths.disk(d.name) })),
      options,
    );
    const started = await control.next(['started'], ANSWER_TIMEOUT_MS, signal);
    if (started.type === 'started' && !started.ok)
      throw new Error(`the destination could not start it: ${started.error}`);
    return { mode: 'cold', downtimeMs: Date.now() - began, bytesTransferred: sent };
  } catch (err) {
    control.destroy();
    throw err instanceof MigrationError
      ? err
      : new MigrationError(id, (err as Error).message, { cause: err });
  } finally {
    control.end();
  }
}

export async function migrateInCold(
  host: ColdMigrationHost,
  spec: DomainSpec,
  control: ControlChannel,
  streams: AsyncIterator<{ label: string; stream: Duplex }>,
  options: SignalOptions = {},
): Promise<DomainInfo> {
  const signal = options.signal;
  const paths = host.paths(spec.id);
  let prepared = false;
  try {
    const rec = await host.prepareFresh(spec, signal);
    prepared = true;
    control.send({ type: 'ready' });
    for (const d of (await host.disksOf(spec)).filter((x) => !x.readOnly)) {
      const next = await streams.next();
      if (next.done) throw new Error(`the source sent no overlay for disk ${d.name}`);
      if (next.value.label !== DISK_LABEL) throw new Error(`unexpected stream "${next.value.label}"`);
      await receiveFile(next.value.stream, paths.disk(d.name), { signal, owner: rec.identity });
    }
    const info = await host.start(spec, signal);
    control.send({ type: 'started', ok: true });
    control.end();
    return info;
  } catch (err) {
    control.send({ type: 'started', ok: false, error: (err as Error).message });
    control.end();
    if (prepared) {
      for (const d of await host.disksOf(spec).catch(() => []))
        await rm(`${paths.disk(d.name)}.incoming`, { force: true });
      await host.destroy(spec.id).catch(() => {});
    }
    throw err instanceof MigrationError
      ? err
      : new MigrationError(spec.id, (err as Error).message, { cause: err });
  }
}
