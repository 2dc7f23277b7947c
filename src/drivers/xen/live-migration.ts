// Moving a PVH domain live with `xl migrate`: Xen copies the guest's memory while it runs, round after
// round, then suspends it for the last dirty pages and its CPU state, and the destination starts it. The
// stream between the two toolstacks is Xenos's: `xl migrate -s ""` runs a helper in place of ssh (a few
// lines of Node that connect xl's stdin and stdout to a unix socket of xenosd's), xenosd carries the bytes
// over the migration transport (the cluster's authenticated libp2p connection), and on the destination
// xenosd feeds them to `xl migrate-receive`. No ssh, no listening port of xl's own.
//
// Xen moves memory, not disks. The domain's disk layer (its qcow2 overlays; the base is the swarm's, on
// both hosts) moves at the one moment it is still: xenosd reads the stream as it passes (xl-stream.ts)
// and holds it just before libxl's END record. By then the guest is suspended, and the destination has
// not attached its disks yet (libxl does that after the stream). While the stream waits the source
// flushes and stops its disk backend (QEMU's qdisk, through its QMP socket), sends the overlays, the
// destination puts them in place and says `received`, and the caller's commit runs; then the rest of
// the stream goes and xl finishes the move on its own (the destination asks to go, the source says go
// and destroys its copy). The pause is the last memory round, the disk layer, and the switch.
//
// Before the commit, any failure leaves the guest where it was: xl resumes the source (its disk backend
// started again) and the destination's half-made domain goes. After it, the instance belongs to the
// destination: if xl then fails, the guest starts there again from the disk layer it already holds, and
// the source's copy must never run again. xl does not know that: when the destination fails it resumes
// the source, and when the destination's xl hangs (a device model that does not start, a dom0 starved)
// it waits for it with no end. So after the commit xenosd ends xl itself as soon as the destination says
// it could not run the guest, says nothing within ANSWER_TIMEOUT_MS, or the caller gives up, and the
// source's copy goes at once (switch-over.ts).

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, Writable } from 'node:stream';
import type {
  DomainInfo,
  DomainSpec,
  MigrateInOptions,
  MigrateOutOptions,
  MigrationReport,
  MigrationTransport,
} from '../driver.ts';
import { MigrationError } from '../errors.ts';
import { CONTROL_LABEL, ControlChannel, DISK_LABEL, XL_LABEL } from '../migration-control.ts';
import { receiveFile, sendFiles } from '../migration-files.ts';
import type { DomainRecord } from '../process/domain-record.ts';
import { adoptReceivedOverlay } from '../qcow2-overlay.ts';
import { bridge, closeListener, listenUnix } from '../unix-tunnel.ts';
import { offerMove } from './saved-migration.ts';
import { SwitchOver } from './switch-over.ts';
import { XlStreamWatch } from './xl-stream.ts';

const ANSWER_TIMEOUT_MS = 300_000;
const PROGRESS_EVERY_MS = 500;

/** What the Xen driver lends a live move. */
export interface LiveMigrationHost {
  readRecord(id: string): Promise<DomainRecord | undefined>;
  disksOf(spec: DomainSpec): Promise<{ name: string; readOnly: boolean; path: string }[]>;
  addressOf(id: string): string | undefined;
  /** `xl migrate` of domain `id` through `rune` with `configPath` as the destination's config, holding
   *  the domain's lock (nothing else starts or stops it meanwhile); `stop` kills xl. */
  send(id: string, configPath: string, rune: string, stop?: AbortSignal): Promise<void>;
  /** The suspended source: its run marked as stopping, its disk backend flushed and stopped. Called
   *  while `send` holds the lock. */
  holdDisks(id: string): Promise<void>;
  /** The move failed after holdDisks: the disk backend runs again, the run is no longer stopping. */
  releaseDisks(id: string): Promise<void>;
  /** The source's copy is gone: its port relay goes too. */
  forget(id: string): Promise<void>;
  /** Fresh files for `spec` (a stopped copy there before is removed), its address `address` taken and
   *  its xl config written; returns that config. */
  prepareIncoming(spec: DomainSpec, address: string | undefined, signal?: AbortSignal): Promise<string>;
  /** `xl migrate-receive` on `stream`, then the token, unpause, the record and the port relay. */
  receive(spec: DomainSpec, stream: Duplex, signal?: AbortSignal): Promise<DomainInfo>;
  /** The domain and its files gone (a destination's half-made copy). */
  destroy(id: string): Promise<void>;
  /** The source's copy gone after a committed move failed: the domain, its files, and the copy xl
   *  renamed away if it got that far. */
  removeSource(id: string): Promise<void>;
}

/** The helper xl runs in place of ssh: its stdin and stdout joined to the unix socket argv[1]. It exits
 *  when the socket ends: xl waits for the destination's answer with its end of the helper's stdin still
 *  open, and only exiting closes the helper's stdout (Node never closes it), so that xl reads the end. */
const HELPER =
  'const s=require("net").connect({path:process.argv[1],allowHalfOpen:true});' +
  's.on("error",(e)=>{console.error("xenos migration helper: "+e.message);process.exit(1)});' +
  's.on("end",()=>process.exit(0));' +
  'process.stdin.pipe(s);s.pipe(process.stdout)';

/** The command line xl runs (`sh -c`) to reach xenosd's socket at `socket`. */
export function helperRune(socket: string, node = process.execPath): string {
  for (const s of [socket, node]) {
    if (/['\n]/.test(s)) throw new Error(`cannot quote ${JSON.stringify(s)} for the migration helper`);
  }
  return `exec '${node}' -e '${HELPER}' '${socket}'`;
}

/** When the destination's side may end for xl (the switch-over, switch-over.ts): xl reads an end before
 *  the destination's answer as a failed move and resumes the source. */
type EndGate = Pick<SwitchOver, 'beforeEnd' | 'broken'>;

/** Accepts the helper's one connection on a fresh socket and bridges it to `stream`, the bytes from xl
 *  going through `watch`; the end of the destination's bytes, or the loss of the connection, reaches xl
 *  only when `gate` lets it. Resolves when both directions ended, rejects when either failed. */
async function tunnel(
  watch: XlStreamWatch,
  stream: Duplex,
  gate: EndGate,
): Promise<{ dir: string; socket: string; done: Promise<void>; close(): Promise<void> }> {
  // A short path of xenosd's own (0700): a socket address holds 107 bytes, a data dir may be deeper.
  const dir = await mkdtemp(join(tmpdir(), 'xenos-xl-'));
  const socket = join(dir, 'tunnel');
  const { promise: done, resolve, reject } = Promise.withResolvers<void>();
  let server: Server | undefined;
  const onConnection = (conn: Socket) => {
    if (!server?.listening) return conn.destroy();
    void closeListener(server, socket);
    conn.on('error', (err) => watch.destroy(err));
    conn.pipe(watch);
    // The helper's connection goes when the gate lets it, never at once: its end is xl's too.
    const drop = () => void gate.beforeEnd().finally(() => conn.destroy());
    const toXl = new Writable({
      write: (chunk: Buffer, _encoding, callback) => conn.write(chunk, callback),
      final: (callback) => gate.beforeEnd().then(() => conn.end(callback), callback),
      destroy: (err, callback) => {
        drop();
        callback(err);
      },
    });
    const b = bridge(Duplex.from({ readable: watch, writable: toXl }), stream);
    b.done.then(({ error }) => {
      if (!error) return resolve();
      reject(error);
      gate.broken(error);
      // The bridge tears down its own two sides only: without this xl would wait on the helper forever.
      drop();
    });
  };
  server = await listenUnix(socket, undefined, onConnection);
  done.catch(() => {});
  return {
    dir,
    socket,
    done,
    close: async () => {
      await closeListener(server, socket);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function migrateOutLive(
  host: LiveMigrationHost,
  id: string,
  transport: MigrationTransport,
  options: MigrateOutOptions = {},
): Promise<MigrationReport> {
  const signal = options.signal;
  const rec = await host.readRecord(id);
  if (!rec?.run) throw new MigrationError(id, 'it does not run here');
  const disks = await host.disksOf(rec.spec);
  const writable = disks.filter((d) => !d.readOnly);
  const control = new ControlChannel(await transport.open(CONTROL_LABEL, { signal }));
  let suspendedAt: number | undefined;
  let diskBytes = 0;
  let link: Awaited<ReturnType<typeof tunnel>> | undefined;
  let watch: XlStreamWatch | undefined;
  // The disk layer, the destination's word that it holds it, and the commit.
  const switchOver = new SwitchOver({
    hold: () => host.holdDisks(id),
    transfer: async (lost) => {
      const stop = signal ? AbortSignal.any([signal, lost]) : lost;
      const files = writable.map((d) => ({ label: DISK_LABEL, path: d.path }));
      diskBytes = await sendFiles(transport, files, { signal: stop });
      await control.next(['received'], ANSWER_TIMEOUT_MS, stop);
    },
    commit: options.commit,
    started: () => control.next(['started'], ANSWER_TIMEOUT_MS, signal),
  });
  const progress = setInterval(() => {
    if (!watch) return;
    options.onProgress?.({
      stage: suspendedAt === undefined ? 'memory' : 'switchover',
      bytesTransferred: watch.bytes + diskBytes,
    });
  }, PROGRESS_EVERY_MS);
  try {
    const answer = await offerMove(
      control,
      { mode: 'live', spec: rec.spec, disks, address: host.addressOf(id) },
      signal,
    );
    if (!answer.config) throw new Error('the destination sent no xl config');
    watch = new XlStreamWatch({
      suspended: () => {
        suspendedAt ??= Date.now();
      },
      // The guest is suspended and the destination has not opened its disks: the disk layer moves now.
      atEnd: () => {
        suspendedAt ??= Date.now();
        return switchOver.run();
      },
    });
    link = await tunnel(watch, await transport.open(XL_LABEL, { signal }), switchOver);
    const config = join(link.dir, 'destination.cfg');
    await writeFile(config, answer.config, { mode: 0o600 });
    // Giving up before the commit breaks the stream, never kills xl: xl then resumes the source domain
    // itself. After the commit the domain may not resume here: xl goes.
    const giveUp = () => {
      const why = new Error(`given up: ${(signal?.reason as Error)?.message ?? String(signal?.reason)}`);
      switchOver.giveUp(why, () => watch?.destroy(why));
    };
    signal?.addEventListener('abort', giveUp, { once: true });
    try {
      const sending = host.send(id, config, helperRune(link.socket), switchOver.killXl);
      switchOver.xlRunning(sending);
      await sending;
    } catch (err) {
      throw switchOver.explain(err as Error);
    } finally {
      signal?.removeEventListener('abort', giveUp);
    }
    const report = await switchOver.report();
    if (!report.ok) throw new Error(`the destination could not run it: ${report.error ?? 'no reason given'}`);
    await host.forget(id);
    const downtimeMs = Date.now() - (suspendedAt ?? Date.now());
    return {
      mode: 'live',
      downtimeMs,
      bytesTransferred: (watch?.bytes ?? 0) + diskBytes,
      how: `moved live (xl migrate): memory copied while the guest ran, then paused ${(downtimeMs / 1000).toFixed(1)} s for the last memory round, the disk layer and the switch`,
    };
  } catch (err) {
    control.destroy();
    watch?.destroy();
    // A switch-over still under way (its wait for the destination now broken) decides whether the move
    // was committed.
    await switchOver.settled();
    const committed = switchOver.committed;
    // Before the commit xl resumed the source (or never suspended it): its disks run again. After it,
    // the source's copy goes (xl may have resumed it before it was stopped).
    if (switchOver.held && !committed) await host.releaseDisks(id).catch(() => {});
    const gone = committed
      ? await host.removeSource(id).then(
          () => '',
          (e: Error) => e.message,
        )
      : '';
    const why = committed
      ? `the move was committed, then failed (the guest starts on the destination from its disk layer; ${gone ? `removing the copy here failed: ${gone}` : 'the copy here is removed'}): ${(err as Error).message}`
      : (err as Error).message;
    throw err instanceof MigrationError ? err : new MigrationError(id, why, { cause: err });
  } finally {
    clearInterval(progress);
    await link?.close();
    control.end();
  }
}

/** The destination of a live move, after the hello (acceptMigration). */
export async function migrateInLive(
  host: LiveMigrationHost,
  spec: DomainSpec,
  control: ControlChannel,
  address: string | undefined,
  streams: AsyncIterator<{ label: string; stream: Duplex }>,
  options: MigrateInOptions = {},
): Promise<DomainInfo> {
  const signal = options.signal;
  let prepared = false;
  // Once the caller saw the commit, the instance is this host's: a failure after it keeps the disk
  // layer here, for the guest to start from again.
  let committed = false;
  options.committed?.then(
    () => {
      committed = true;
    },
    () => {},
  );
  try {
    let config: string;
    try {
      config = await host.prepareIncoming(spec, address, signal);
    } catch (err) {
      control.send({ type: 'refuse', reason: (err as Error).message });
      throw err;
    }
    prepared = true;
    control.send({ type: 'ready', config });
    const xl = await streams.next();
    if (xl.done || xl.value.label !== XL_LABEL) {
      throw new Error(`expected the ${XL_LABEL} stream, got ${xl.done ? 'none' : `"${xl.value.label}"`}`);
    }
    const received = host.receive(spec, xl.value.stream, signal);
    received.catch(() => {});
    // The disk layer comes while the stream waits at its end; xl attaches the disks only after it.
    for (const d of (await host.disksOf(spec)).filter((x) => !x.readOnly)) {
      const next = await Promise.race([streams.next(), received.then(() => undefined)]);
      if (!next || next.done) throw new Error(`the source sent no disk layer for ${d.name}`);
      if (next.value.label !== DISK_LABEL) throw new Error(`unexpected stream "${next.value.label}"`);
      // Its header is the sender's: the backing file becomes this host's base (qdisk follows it).
      const check = (f: string) => adoptReceivedOverlay(f, d.path, { signal });
      await receiveFile(next.value.stream, d.path, { signal, check });
    }
    control.send({ type: 'received' });
    const info = await received;
    control.send({ type: 'started', ok: true });
    control.end();
    return info;
  } catch (err) {
    control.send({ type: 'started', ok: false, error: (err as Error).message });
    control.end();
    if (prepared && !committed) {
      for (const d of await host.disksOf(spec).catch(() => []))
        await rm(`${d.path}.incoming`, { force: true });
      await host.destroy(spec.id).catch(() => {});
    }
    throw err instanceof MigrationError
      ? err
      : new MigrationError(spec.id, (err as Error).message, { cause: err });
  }
}
