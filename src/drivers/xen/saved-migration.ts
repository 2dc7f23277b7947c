// Moving a Xen domain by save, copy and restore: the source suspends the guest into a checkpoint file
// (`xl save`: its memory and CPU state; the domain is gone after), sends its writable disk overlays and
// the checkpoint over the migration transport, and the destination restores it (`xl restore -p` with its
// own config: its own disk paths), hands it its token, and unpauses it. The guest keeps its memory — its
// processes, its counters — and its address on the user network (the destination must be able to give the
// same one), but it is paused from the save until the restore: the whole copy. This is the move for PV
// and HVM guests (Debian's Xen cannot live-migrate PV ones), and for PVH when asked for `cold`.
//
// If the destination fails, the source restores its own checkpoint: the guest goes on where it was.

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
import {
  CONTROL_LABEL,
  CONTROL_VERSION,
  ControlChannel,
  type ControlMessage,
  DISK_LABEL,
  MEMORY_LABEL,
} from '../migration-control.ts';
import { overlayShapes, receiveFile, sendFiles } from '../migration-files.ts';
import type { DomainRecord } from '../process/domain-record.ts';
import { adoptReceivedOverlay } from '../qcow2-overlay.ts';
import { guestSize } from '../vm-shape.ts';

const ANSWER_TIMEOUT_MS = 300_000;

/** What the Xen driver lends the move. */
export interface SavedMigrationHost {
  readRecord(id: string): Promise<DomainRecord | undefined>;
  /** The writable and read-only disks of the spec, by name, with their files here. */
  disksOf(spec: DomainSpec): Promise<{ name: string; readOnly: boolean; path: string }[]>;
  /** Where the checkpoint goes for domain `id`. */
  checkpointPath(id: string): string;
  /** The guest's address on the user network here (undefined: none). */
  addressOf(id: string): string | undefined;
  /** `xl save`: suspends the running domain into `file`; marks the run as stopped on request. */
  save(id: string, file: string, signal?: AbortSignal): Promise<void>;
  /** Fresh files for `spec` (a stopped copy there before is removed), its address `address` taken. */
  prepareFresh(spec: DomainSpec, address: string | undefined, signal?: AbortSignal): Promise<void>;
  /** `xl restore -p` from `file` with this host's config, the token, unpause; the port relay. */
  restore(spec: DomainSpec, file: string, signal?: AbortSignal): Promise<DomainInfo>;
  destroy(id: string): Promise<void>;
}

/** The source's first steps either way (live or saved): the guest's shape, disks and address to the
 *  destination, and its answer, `ready` (a refusal is an error). */
export async function offerMove(
  control: ControlChannel,
  guest: {
    mode: 'live' | 'cold';
    spec: DomainSpec;
    disks: { name: string; readOnly: boolean; path: string }[];
    address: string | undefined;
  },
  signal?: AbortSignal,
): Promise<Extract<ControlMessage, { type: 'ready' }>> {
  control.send({
    type: 'hello',
    version: CONTROL_VERSION,
    mode: guest.mode,
    ...guestSize(guest.spec),
    disks: await overlayShapes(guest.disks, signal),
    address: guest.address,
  });
  const answer = await control.next(['ready', 'refuse'], ANSWER_TIMEOUT_MS, signal);
  if (answer.type === 'refuse') throw new Error(`the destination refused: ${answer.reason}`);
  return answer;
}

export async function migrateOutSaved(
  host: SavedMigrationHost,
  id: string,
  transport: MigrationTransport,
  options: MigrateOutOptions = {},
): Promise<MigrationReport> {
  const signal = options.signal;
  const rec = await host.readRecord(id);
  if (!rec) throw new MigrationError(id, 'no such domain on this host');
  const disks = await host.disksOf(rec.spec);
  const checkpoint = host.checkpointPath(id);
  const control = new ControlChannel(await transport.open(CONTROL_LABEL, { signal }));
  let saved = false;
  try {
    await offerMove(control, { mode: 'cold', spec: rec.spec, disks, address: host.addressOf(id) }, signal);
    const began = Date.now();
    await host.save(id, checkpoint, signal);
    saved = true;
    const files = [
      ...disks.filter((d) => !d.readOnly).map((d) => ({ label: DISK_LABEL, path: d.path })),
      { label: MEMORY_LABEL, path: checkpoint },
    ];
    const sent = await sendFiles(transport, files, options);
    const started = await control.next(['started'], ANSWER_TIMEOUT_MS, signal);
    if (started.type === 'started' && !started.ok)
      throw new Error(`the destination could not restore it: ${started.error}`);
    await rm(checkpoint, { force: true });
    const downtimeMs = Date.now() - began;
    return {
      mode: 'cold',
      downtimeMs,
      bytesTransferred: sent,
      how: `saved, copied and restored (xl save / xl restore): the guest kept its memory and was paused ${(downtimeMs / 1000).toFixed(1)} s`,
    };
  } catch (err) {
    control.destroy();
    // The guest goes on here where it was.
    if (saved) {
      await host.restore(rec.spec, checkpoint).then(
        () => rm(checkpoint, { force: true }),
        () => {},
      );
    }
    throw err instanceof MigrationError
      ? err
      : new MigrationError(id, (err as Error).message, { cause: err });
  } finally {
    control.end();
  }
}

/** The destination of a saved move, after the hello (acceptMigration). */
export async function migrateInSaved(
  host: SavedMigrationHost,
  spec: DomainSpec,
  control: ControlChannel,
  address: string | undefined,
  streams: AsyncIterator<{ label: string; stream: Duplex }>,
  options: SignalOptions = {},
): Promise<DomainInfo> {
  const signal = options.signal;
  let prepared = false;
  const checkpoint = host.checkpointPath(spec.id);
  try {
    const disks = await host.disksOf(spec);
    try {
      await host.prepareFresh(spec, address, signal);
    } catch (err) {
      control.send({ type: 'refuse', reason: (err as Error).message });
      throw err;
    }
    prepared = true;
    control.send({ type: 'ready' });
    const targets = [...disks.filter((d) => !d.readOnly).map((d) => d.path), checkpoint];
    for (const [i, target] of targets.entries()) {
      const next = await streams.next();
      const want = i < targets.length - 1 ? DISK_LABEL : MEMORY_LABEL;
      if (next.done) throw new Error(`the source sent no ${want} stream`);
      if (next.value.label !== want) throw new Error(`expected a ${want} stream, got "${next.value.label}"`);
      // An overlay's header is the sender's: its backing file becomes this host's base (qdisk follows it).
      const check =
        want === DISK_LABEL ? (f: string) => adoptReceivedOverlay(f, target, { signal }) : undefined;
      await receiveFile(next.value.stream, target, { signal, check });
    }
    const info = await host.restore(spec, checkpoint, signal);
    await rm(checkpoint, { force: true });
    control.send({ type: 'started', ok: true });
    control.end();
    return info;
  } catch (err) {
    control.send({ type: 'started', ok: false, error: (err as Error).message });
    control.end();
    if (prepared) {
      await rm(checkpoint, { force: true });
      await host.destroy(spec.id).catch(() => {});
    }
    throw err instanceof MigrationError
      ? err
      : new MigrationError(spec.id, (err as Error).message, { cause: err });
  }
}
