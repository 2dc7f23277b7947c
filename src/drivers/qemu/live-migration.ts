// Live migration of a QEMU guest with its disks, over a MigrationTransport (libvirt's copy-storage model,
// nothing shared between the hosts): the destination starts the same machine paused, waiting for an
// incoming migration, with fresh overlays on its own copy of the base and those overlays exported over
// NBD; the source mirrors only its overlays (`sync: top`, background copy) into those exports, then
// migrates memory. QEMU pauses before the switchover; the mirrors are completed there (the guest is
// stopped: nothing more to copy), the memory's last pages go, and only then the move is committed and the
// destination told to run. Streams: `control` (JSON lines, migration-control.ts), `memory`, and one `disk`
// per NBD connection, each bridged to a unix socket in the guest's vm/ directory (unix-tunnel.ts).
// The pause is measured as the guest sees it (destination RESUME − source STOP, clocks aligned by
// migration-clock.ts). Failure cases and who cleans what: README.md, "Migration".

import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type {
  DomainInfo,
  DomainSpec,
  IncomingMigration,
  MigrateOutOptions,
  MigrationReport,
  MigrationTransport,
  SignalOptions,
} from '../driver.ts';
import { MigrationError } from '../errors.ts';
import {
  acceptMigration,
  CONTROL_LABEL,
  CONTROL_VERSION,
  ControlChannel,
  DISK_LABEL,
  type DiskShape,
  goAhead,
  MEMORY_LABEL,
} from '../migration-control.ts';
import type { DomainRecord } from '../process/domain-record.ts';
import type { Identity } from '../sandbox/bwrap-plan.ts';
import { type Bridge, bridge, closeListener, connectUnix, listenUnix } from '../unix-tunnel.ts';
import { guestSize } from '../vm-shape.ts';
import { answerClockPings, measureClockOffset } from './migration-clock.ts';
import { type LiveMigrationTuning, MigrationMonitor, type MigrationQmp } from './migration-monitor.ts';
import { diskNode } from './qemu-command.ts';
import { type QmpClient, qmpTimeMs } from './qmp.ts';
import type { VmPaths } from './vm-layout.ts';

/** Socket names in the guest's vm/ directory (QEMU's working directory, so QEMU is given them relative). */
export const MEMORY_SOCKET = 'migrate-memory.sock';
export const NBD_SOCKET = 'migrate-nbd.sock';

/** Tuning of live migrations (xenosd's defaults are below). */
/** What of the QEMU driver a migration uses. */
export interface LiveMigrationHost {
  paths(id: string): VmPaths;
  readRecord(id: string): Promise<DomainRecord | undefined>;
  /** The running guest's monitor (the driver's one connection). */
  qmp(id: string, signal?: AbortSignal): Promise<QmpClient>;
  /** The disks of a spec as the guest sees them (name, read-only). */
  disksOf(spec: DomainSpec): Promise<{ name: string; readOnly: boolean }[]>;
  /** Fresh files for `spec` and QEMU started paused, waiting for an incoming migration. */
  startIncoming(spec: DomainSpec, signal?: AbortSignal): Promise<DomainRecord>;
  /** Forces the guest off (the source's copy once the move is committed). */
  stopNow(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  describe(id: string): Promise<DomainInfo>;
  /** QEMU's last complaint on the domain's stderr. */
  complaint(id: string): Promise<string | undefined>;
}

export interface MigrateInLiveOptions extends SignalOptions {
  /** Resolves when the move was committed elsewhere (the instance bound here): the guest runs even if
   *  the source's `go` never comes (the link broke after the commit). */
  committed?: Promise<void>;
}

export interface MigrateOutLiveOptions extends MigrateOutOptions {
  /** The commit point: called at the switchover, both copies paused, the destination holding all
   *  state. Resolved: the destination runs the guest. Thrown: the source runs it again. */
  commit?(): Promise<void>;
}

const CLOCK_SAMPLES = 8;
const NEVER_MS = 24 * 3600_000;

/** Sizes of the guest's disks (guest-visible), from its monitor. */
async function diskShapes(
  qmp: QmpClient,
  disks: { name: string; readOnly: boolean }[],
): Promise<DiskShape[]> {
  const nodes = await qmp.execute<{ 'node-name': string; image: { 'virtual-size': number } }[]>(
    'query-named-block-nodes',
    { flat: true },
  );
  return disks.map((d) => {
    const node = nodes.find((n) => n['node-name'] === diskNode(d.name));
    if (!node) throw new Error(`QEMU has no block node ${diskNode(d.name)}`);
    return { name: d.name, readOnly: d.readOnly, virtualSize: node.image['virtual-size'] };
  });
}

// -------------------------------------------------------------------------------------------------
// source

export async function migrateOutLive(
  host: LiveMigrationHost,
  id: string,
  transport: MigrationTransport,
  tuning: Required<LiveMigrationTuning>,
  options: MigrateOutLiveOptions = {},
): Promise<MigrationReport> {
  const signal = options.signal;
  const fail = (message: string, cause?: unknown): never => {
    throw new MigrationError(id, message, { cause });
  };
  const rec = await host.readRecord(id);
  if (!rec) fail('no such domain on this host');
  const paths = host.paths(id);
  const qmp = await host.qmp(id, signal);
  const status = await qmp.execute<{ status: string }>('query-status');
  if (status.status !== 'running') fail(`the guest is ${status.status}, not running`);
  const disks = (await host.disksOf(rec!.spec)).filter((d) => !d.readOnly);
  const { memoryMiB, vcpus } = guestSize(rec!.spec);
  const monitor = new MigrationMonitor(qmp as MigrationQmp, id);
  const bridges: { label: string; bridge: Bridge }[] = [];
  let nbdServer: Server | undefined;
  let memoryServer: Server | undefined;
  /** QEMU's connections to our sockets: a listener closes only once they are gone. */
  const accepted = new Set<Socket>();
  const control = new ControlChannel(await transport.open(CONTROL_LABEL, { signal }));
  let committed = false;
  try {
    control.send({
      type: 'hello',
      version: CONTROL_VERSION,
      mode: 'live',
      memoryMiB,
      vcpus,
      disks: await diskShapes(qmp, await host.disksOf(rec!.spec)),
    });
    const clock = await measureClockOffset(control, CLOCK_SAMPLES, signal);
    const answer = await control.next(['ready', 'refuse'], tuning.setupTimeoutMs, signal);
    if (answer.type === 'refuse') fail(`the destination refused: ${answer.reason}`);
    control.stream.once('close', () => {
      if (!committed)
        monitor.abort(control.error ?? new Error('the control stream to the destination closed'));
    });
    // From now on the destination may still give up (its QEMU failed): stop at once, with its reason.
    control.handle('refuse', (m) => {
      if (m.type === 'refuse') monitor.abort(new Error(`the destination gave up: ${m.reason}`));
    });

    // Every connection QEMU makes to our sockets becomes one stream to the destination.
    const owner: Identity | undefined = rec!.identity;
    const tunnel = (label: string) => (socket: Socket) => {
      accepted.add(socket);
      socket.once('close', () => accepted.delete(socket));
      transport.open(label, { signal }).then(
        (stream) => {
          // The move ended while this stream was being opened: nothing will read it.
          if (socket.destroyed) {
            stream.destroy();
            return;
          }
          const b = bridge(socket, stream);
          bridges.push({ label, bridge: b });
          // A stream breaking before the commit is this move's failure, in its own words, at once: QEMU
          // would only say its socket closed, and a mirror whose NBD link broke between its requests
          // may not say even that until its next write.
          void b.done.then(({ error }) => {
            if (error && !committed) monitor.abort(new Error(`the ${label} stream broke: ${error.message}`));
          });
        },
        (err: Error) => {
          socket.destroy();
          monitor.abort(new Error(`opening a ${label} stream failed: ${err.message}`));
        },
      );
    };
    const nbdPath = `${paths.vm}/${NBD_SOCKET}`;
    const memoryPath = `${paths.vm}/${MEMORY_SOCKET}`;
    nbdServer = await listenUnix(nbdPath, owner, tunnel(DISK_LABEL));
    memoryServer = await listenUnix(memoryPath, owner, tunnel(MEMORY_LABEL));
    const diskBytes = () => bridges.reduce((n, b) => n + (b.label === DISK_LABEL ? b.bridge.sent : 0), 0);

    // 1. The disks: mirror each overlay (only the overlay: `sync: top`) into the destination's export.
    await monitor.mirrorDisks(
      disks.map((d) => d.name),
      NBD_SOCKET,
      (p) => options.onProgress?.({ stage: 'disk', bytesTransferred: diskBytes(), bytesTotal: p.total }),
      signal,
    );
    // 2. Memory, QEMU pausing before the switchover so the mirrors complete while the guest is stopped.
    await monitor.configure(tuning);
    const memoryLink = () => {
      const b = bridges.find((x) => x.label === MEMORY_LABEL)?.bridge;
      return { sent: b?.sent ?? 0, stalledMs: b?.stalledMs ?? 0 };
    };
    const switched = await monitor.migrateMemory(
      MEMORY_SOCKET,
      tuning.paceBandwidth ? memoryLink : undefined,
      tuning.maxBandwidthBytesPerSecond,
      (p) =>
        options.onProgress?.({
          stage: p.switchover ? 'switchover' : 'memory',
          bytesTransferred: diskBytes() + p.ramTransferred,
          bytesTotal: diskBytes() + p.ramTransferred + p.ramRemaining,
          dirtyRateBytesPerSecond: p.dirtyRateBytesPerSecond,
        }),
      signal,
    );
    // 3. The commit point: the source's copy is stopped for good, the destination holds everything.
    if (options.commit) await options.commit();
    committed = true;
    control.send({ type: 'go' });
    const resumed = await control.next(['resumed'], tuning.resumeTimeoutMs).catch(() => undefined);
    await host.stopNow(id).catch(() => {});
    const downtimeMs = resumed
      ? Math.max(0, resumed.resumedAtMs - clock.offsetMs - switched.stoppedAtMs)
      : undefined;
    return {
      mode: 'live',
      ...(downtimeMs !== undefined ? { downtimeMs: Math.round(downtimeMs * 10) / 10 } : {}),
      bytesTransferred: diskBytes() + switched.ramTransferred,
    };
  } catch (err) {
    if (!committed) {
      control.send({ type: 'abort', reason: (err as Error).message });
      await monitor.rollBack();
    }
    if (err instanceof MigrationError) throw err;
    const why = signal?.aborted ? (signal.reason as Error) : (err as Error);
    throw new MigrationError(id, why.message, { cause: err });
  } finally {
    control.end();
    // A connection whose stream was still being opened has no bridge to end it.
    if (!committed) for (const socket of accepted) socket.destroy();
    await closeListener(nbdServer, `${paths.vm}/${NBD_SOCKET}`);
    await closeListener(memoryServer, `${paths.vm}/${MEMORY_SOCKET}`);
    if (!committed) for (const b of bridges) b.bridge.destroy();
    monitor.close();
  }
}

// -------------------------------------------------------------------------------------------------
// destination

/** The destination's entry: the first stream must be `control`, its first line the source's hello. */
export async function receiveMigration(
  host: LiveMigrationHost,
  spec: DomainSpec,
  incoming: IncomingMigration,
  options: MigrateInLiveOptions,
  cold: (
    control: ControlChannel,
    streams: AsyncIterator<{ label: string; stream: Duplex }>,
  ) => Promise<DomainInfo>,
): Promise<DomainInfo> {
  const { control, streams, hello } = await acceptMigration(
    spec.id,
    incoming,
    async () => ({ ...guestSize(spec), disks: await host.disksOf(spec) }),
    { signal: options.signal, onControl: answerClockPings },
  );
  if (hello.mode === 'cold') return cold(control, streams);
  return migrateInLive(host, spec, control, hello.disks, streams, options);
}

async function migrateInLive(
  host: LiveMigrationHost,
  spec: DomainSpec,
  control: ControlChannel,
  shapes: DiskShape[],
  streams: AsyncIterator<{ label: string; stream: Duplex }>,
  options: MigrateInLiveOptions,
): Promise<DomainInfo> {
  const id = spec.id;
  const signal = options.signal;
  const paths = host.paths(id);
  const bridges: Bridge[] = [];
  /** Why the memory stream from the source broke, if it did: QEMU here only sees its socket end. */
  let memoryBroke: Error | undefined;
  let started = false;
  try {
    await host.startIncoming(spec, signal);
    started = true;
    const qmp = await host.qmp(id, signal);
    const here = await diskShapes(qmp, shapes);
    for (const [i, d] of here.entries()) {
      if (d.virtualSize !== shapes[i].virtualSize) {
        throw new Error(
          `disk ${d.name} is ${d.virtualSize} bytes here and ${shapes[i].virtualSize} on the source`,
        );
      }
    }
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    await qmp.execute('nbd-server-start', { addr: { type: 'unix', data: { path: NBD_SOCKET } } });
    for (const d of shapes.filter((s) => !s.readOnly)) {
      await qmp.execute('block-export-add', {
        type: 'nbd',
        id: `migrate-${d.name}`,
        'node-name': diskNode(d.name),
        name: diskNode(d.name),
        writable: true,
      });
    }
    const arrived = qmp.waitForEvent('MIGRATION', {
      match: (e) => e.data?.status === 'completed' || e.data?.status === 'failed',
      signal,
      timeoutMs: NEVER_MS,
    });
    await qmp.execute('migrate-incoming', { uri: `unix:${MEMORY_SOCKET}` });
    // Each stream the source opens goes to the QEMU socket its label names.
    void (async () => {
      for (let next = await streams.next(); !next.done; next = await streams.next()) {
        const { label, stream } = next.value;
        // Until it is bridged, a reset of the stream is this migration's failure, reported elsewhere.
        stream.on('error', () => {});
        const socket = label === MEMORY_LABEL ? MEMORY_SOCKET : label === DISK_LABEL ? NBD_SOCKET : undefined;
        if (!socket) {
          stream.destroy(new Error(`unexpected stream "${label}"`));
          continue;
        }
        await connectUnix(`${paths.vm}/${socket}`, signal).then(
          (s) => {
            const b = bridge(s, stream);
            bridges.push(b);
            if (label === MEMORY_LABEL) void b.done.then(({ error }) => (memoryBroke ??= error));
          },
          (err: Error) => stream.destroy(err),
        );
      }
    })().catch(() => {});
    control.send({ type: 'ready' });
    // QEMU here ending, or failing the incoming migration, before the go is this move's end: waiting
    // for a go would hold both sides (the source's migration waits on a stream nobody reads).
    const lost = arrived.then(
      async (e) => {
        if (e.data?.status !== 'completed') throw await incomingFailed(qmp, host.complaint(id), memoryBroke);
        return new Promise<never>(() => {});
      },
      (err: Error) => {
        throw new Error(`QEMU here ended before the go: ${err.message}`);
      },
    );
    lost.catch(() => {});
    await Promise.race([goAhead(control, options), lost]);
    const end = await arrived;
    if (end.data?.status !== 'completed') throw await incomingFailed(qmp, host.complaint(id), memoryBroke);
    await qmp.execute('nbd-server-stop');
    const resumed = qmp.waitForEvent('RESUME', { timeoutMs: 30_000 });
    await qmp.execute('cont');
    control.send({ type: 'resumed', resumedAtMs: qmpTimeMs((await resumed).timestamp) });
    control.end();
    return await host.describe(id);
  } catch (err) {
    control.send({ type: 'refuse', reason: (err as Error).message });
    control.end();
    for (const b of bridges) b.destroy();
    // A copy that never got go is removed; the source runs the guest.
    if (started) await host.destroy(id).catch(() => {});
    const why = signal?.aborted ? (signal.reason as Error) : (err as Error);
    throw err instanceof MigrationError ? err : new MigrationError(id, why.message, { cause: err });
  }
}

/** The incoming migration failed: why, in QEMU's words (query-migrate's error-desc, its last complaint),
 *  and the memory stream's own failure when it broke. */
async function incomingFailed(
  qmp: QmpClient,
  complaint: Promise<string | undefined>,
  broke: Error | undefined,
): Promise<Error> {
  const info = (await qmp.execute('query-migrate').catch(() => undefined)) as
    | { 'error-desc'?: string }
    | undefined;
  const why = [info?.['error-desc'], await complaint].filter(Boolean).join('; ');
  const stream = broke ? `; the memory stream broke: ${broke.message}` : '';
  return new Error(`the memory did not arrive whole (QEMU: ${why || 'failed, no reason given'})${stream}`);
}
