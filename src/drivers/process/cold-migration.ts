// Cold migration of a process-driver domain to a peer: the source stops it and sends its directory
// (record, rootfs, logs) as one tar stream labelled `domain-dir`; the destination unpacks it beside its
// domains, moves it in, starts it and answers with one JSON line once it runs (or why not). The source
// measures downtime as stop-begin → that answer. Tar is GNU tar from the host. The driver lends its lock,
// its stop and its launch (MigrationHost); a running process cannot move live.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Duplex, Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type {
  DomainInfo,
  DomainSpec,
  IncomingMigration,
  MigrateOutOptions,
  MigrationReport,
  MigrationTransport,
  SignalOptions,
} from '../driver.ts';
import { DomainNotFoundError, DriverError, MigrationError } from '../errors.ts';
import { DomainPaths, type DomainRecord, readRecord } from './domain-record.ts';
import { domainAlive } from './domain-state.ts';
import { ensureRootfsMounted, removeRootfs } from './rootfs.ts';

/** What of the driver a migration uses. */
export interface MigrationHost {
  domainsDir: string;
  paths(id: string): DomainPaths;
  withLock<T>(id: string, fn: () => Promise<T>): Promise<T>;
  /** Stops the domain (politely, with the driver's default grace). */
  stop(paths: DomainPaths, rec: DomainRecord, signal?: AbortSignal): Promise<void>;
  /** Gives a domain moved in this host's own uid, records and starts it. */
  startMoved(rec: DomainRecord, paths: DomainPaths): Promise<DomainInfo>;
}

export async function migrateOut(
  host: MigrationHost,
  id: string,
  transport: MigrationTransport,
  options: MigrateOutOptions = {},
): Promise<MigrationReport> {
  if (options.mode === 'live') {
    throw new MigrationError(
      id,
      'the process driver cannot migrate a running process live; ask for mode Cold or Auto',
    );
  }
  const began = Date.now();
  await host.withLock(id, async () => {
    const paths = host.paths(id);
    const rec = await readRecord(paths);
    if (!rec) throw new DomainNotFoundError(id, host.domainsDir);
    await host.stop(paths, rec, options.signal);
    // After a reboot its overlay may not be mounted: the files go as the domain sees them.
    await ensureRootfsMounted(rec.spec.image, paths, rec.disk, options.signal);
  });
  const dir = host.paths(id).dir;
  const stream = await transport.open(DOMAIN_DIR_LABEL, { signal: options.signal });
  // A reset may come while nothing reads or writes: its error surfaces through the steps below.
  stream.on('error', () => {});
  try {
    const total = await dirBytes(dir, SKIPPED);
    const report = options.onProgress;
    const bytes = await sendDomainDir(dir, stream, options.signal, (sent) =>
      report?.({ stage: 'files', bytesTransferred: sent, bytesTotal: Math.max(total, sent) }),
    );
    const answer = await readAnswer(stream);
    if (!answer.ok) {
      throw new MigrationError(
        id,
        `the destination could not start it: ${answer.error ?? 'no reason given'}`,
      );
    }
    return { mode: 'cold', downtimeMs: Date.now() - began, bytesTransferred: bytes };
  } catch (err) {
    stream.destroy();
    if (err instanceof MigrationError) throw err;
    throw new MigrationError(id, (err as Error).message, { cause: err });
  }
}

export async function migrateIn(
  host: MigrationHost,
  spec: DomainSpec,
  incoming: IncomingMigration,
  options: SignalOptions = {},
): Promise<DomainInfo> {
  const paths = host.paths(spec.id);
  for await (const { label, stream } of incoming) {
    stream.on('error', () => {}); // surfaces through the steps below
    if (label !== DOMAIN_DIR_LABEL) {
      stream.destroy();
      throw new MigrationError(
        spec.id,
        `unexpected stream "${label}" (the process driver takes "${DOMAIN_DIR_LABEL}")`,
      );
    }
    try {
      const info = await host.withLock(spec.id, async () => {
        const moved = await installDomainDir(host, spec, stream, options.signal);
        // Keep the moved rootfs, logs, ports (as preferences) and restart count; this host's run starts now.
        return host.startMoved(
          {
            ...moved,
            disk: {
              mode: 'Copy',
              message:
                'moved here from another host: its files arrived whole, not over an image of this host',
            },
          },
          paths,
        );
      });
      await writeAnswer(stream, { ok: true, startedAt: info.startedAt });
      return info;
    } catch (err) {
      await writeAnswer(stream, { ok: false, error: (err as Error).message });
      throw err instanceof DriverError
        ? err
        : new MigrationError(spec.id, (err as Error).message, { cause: err });
    }
  }
  throw new MigrationError(spec.id, 'the source opened no stream');
}

/** Unpacks the domain directory `stream` carries (a tar of sendDomainDir) in place of whatever of the
 *  domain is here (refused while it runs), whole or not at all; returns its record for `spec`, with this
 *  host's run and identity still to come. Called under the domain's lock. */
export async function installDomainDir(
  host: Pick<MigrationHost, 'domainsDir' | 'paths'>,
  spec: DomainSpec,
  stream: Readable,
  signal?: AbortSignal,
): Promise<DomainRecord> {
  const paths = host.paths(spec.id);
  const here = await readRecord(paths);
  if (here?.run && (await domainAlive(paths, here.run))) {
    throw new MigrationError(spec.id, 'a domain with this id already runs on this host');
  }
  const staging = `${paths.dir}.incoming`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true, mode: 0o700 });
  await receiveDomainDir(stream, staging, signal);
  const moved = await readRecord(new DomainPaths(host.domainsDir, `${spec.id}.incoming`));
  if (!moved) throw new MigrationError(spec.id, 'the stream held no domain.json');
  await removeRootfs(paths, signal);
  await rm(paths.dir, { recursive: true, force: true });
  await rename(staging, paths.dir);
  return {
    ...moved,
    spec,
    preparedDigest: spec.image.digest ?? moved.preparedDigest,
    run: undefined,
    identity: undefined,
  };
}

export const DOMAIN_DIR_LABEL = 'domain-dir';

/** What the destination answers on the stream after receiving. */
export interface MigrationAnswer {
  ok: boolean;
  error?: string;
  startedAt?: string;
}

/** Tar's end; exit 1 ("some files differ": changed while read) is fine when `changing` files are expected. */
async function tarExit(
  child: ReturnType<typeof spawn>,
  what: string,
  stderr: () => string,
  changing = false,
): Promise<void> {
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  if (code !== 0 && !(changing && code === 1))
    throw new Error(`${what} failed (${signal ?? `exit ${code}`}): ${stderr().trim()}`);
}

function collectStderr(child: ReturnType<typeof spawn>): () => string {
  let text = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (text.length < 4096) text += d.toString();
  });
  return () => text;
}

/** What of a domain's directory does not move: its run state and an overlay's own layer (the rootfs goes
 *  as the domain sees it, through the overlay). */
const SKIPPED = ['run', 'layer'];

/** About how many bytes the tar of `dir` carries (file sizes; headers and padding are not counted). */
async function dirBytes(dir: string, skipped: string[]): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    const rel = relative(dir, join(e.parentPath, e.name));
    if (skipped.some((s) => rel === s || rel.startsWith(`${s}/`))) continue;
    total += (await lstat(join(e.parentPath, e.name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

/** Sends `dir` (without its run/ state, nor `options.skip`; only `options.members` when given) down
 *  `stream` and half-closes it; resolves the bytes sent. `sent` hears the running count (at most every
 *  250 ms). `options.changing`: the domain runs, so a file may change while tar reads it (tar sends it as
 *  it read it). */
export async function sendDomainDir(
  dir: string,
  stream: Writable,
  signal?: AbortSignal,
  sent?: (bytes: number) => void,
  options: { skip?: string[]; changing?: boolean; members?: string[] } = {},
): Promise<number> {
  const skipped = [...SKIPPED, ...(options.skip ?? [])];
  const args = ['-C', dir, '-cf', '-', ...skipped.map((s) => `--exclude=./${s}`)];
  if (options.changing) args.push('--warning=no-file-changed', '--warning=no-file-removed');
  const members = options.members ?? ['.'];
  const tar = spawn('tar', [...args, '--', ...members], { stdio: ['ignore', 'pipe', 'pipe'], signal });
  const stderr = collectStderr(tar);
  let bytes = 0;
  let told = 0;
  tar.stdout.on('data', (d: Buffer) => {
    bytes += d.length;
    if (sent && Date.now() - told >= 250) {
      told = Date.now();
      sent(bytes);
    }
  });
  // A broken stream ends tar too (it is killed), so neither side waits on the other forever.
  await settleBoth(tar, [
    tarExit(tar, `tar of ${dir}`, stderr, options.changing),
    pipeline(tar.stdout, stream, { end: true, signal }),
  ]);
  return bytes;
}

/** Waits for both the copy and tar; the first failure kills tar and is thrown once tar is gone. */
async function settleBoth(
  tar: ReturnType<typeof spawn>,
  steps: [Promise<void>, Promise<void>],
): Promise<void> {
  let first: { err: unknown } | undefined;
  await Promise.allSettled(
    steps.map((p) =>
      p.catch((err: unknown) => {
        first ??= { err };
        tar.kill('SIGKILL');
      }),
    ),
  );
  if (first) throw first.err;
}

/** Reads the destination's one-line answer after the source half-closed its side. */
export async function readAnswer(stream: Duplex): Promise<MigrationAnswer> {
  let text = '';
  for await (const chunk of stream) {
    text += chunk.toString();
    if (text.length > 65536) break;
  }
  try {
    return JSON.parse(text.trim()) as MigrationAnswer;
  } catch {
    return {
      ok: false,
      error: `the destination answered ${JSON.stringify(text.slice(0, 200))}, not a result`,
    };
  }
}

/** Extracts the tar stream into `dir` (which must exist and be empty). Tar may finish at the archive's end
 *  marker before the stream's half-close arrives (a separate frame): what is left is drained, not an error,
 *  and the stream stays open for the answer. A stream that breaks first kills tar. */
export async function receiveDomainDir(stream: Readable, dir: string, signal?: AbortSignal): Promise<void> {
  const tar = spawn('tar', ['-C', dir, '-xf', '-', '--no-same-owner'], {
    stdio: ['pipe', 'ignore', 'pipe'],
    signal,
  });
  const stderr = collectStderr(tar);
  tar.stdin.on('error', () => {}); // a write after tar is done: tar's exit says how it went
  // Copied by hand, not piped: a pipe stalls for good once tar is gone, and the rest must still drain.
  let tarGone = false;
  stream.on('data', (chunk: Buffer) => {
    if (tarGone || tar.stdin.write(chunk)) return;
    stream.pause();
    tar.stdin.once('drain', () => stream.resume());
  });
  tar.on('close', () => {
    tarGone = true;
    stream.resume();
  });
  const ended = readableEnd(stream, signal).then(() => void tar.stdin.end());
  await settleBoth(tar, [ended, tarExit(tar, `extracting into ${dir}`, stderr)]);
}

/** Resolves at the stream's readable end (its peer's half-close), not at its close, which waits for this
 *  side's answer too; rejects if it errors or closes first. */
async function readableEnd(stream: Readable, signal?: AbortSignal): Promise<void> {
  if (stream.readableEnded) return;
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  const onEnd = () => resolve();
  const onError = (err: Error) => reject(err);
  const onClose = () => reject(new Error('the stream closed before the whole archive came'));
  const onAbort = () => reject(signal?.reason);
  stream.once('end', onEnd).once('error', onError).once('close', onClose);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await promise;
  } finally {
    stream.off('end', onEnd).off('error', onError).off('close', onClose);
    signal?.removeEventListener('abort', onAbort);
  }
}

export async function writeAnswer(stream: Duplex, answer: MigrationAnswer): Promise<void> {
  stream.end(`${JSON.stringify(answer)}\n`);
  await finished(stream, { readable: false }).catch(() => {});
}
