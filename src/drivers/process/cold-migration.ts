// Moving a stopped process-driver domain to a peer: its directory (record, rootfs, logs) as one tar stream
// labelled `domain-dir`, then one JSON line back from the destination once the domain runs there (or why
// not). The source measures downtime as stop-begin → that answer. Tar is GNU tar from the host.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { finished } from 'node:stream/promises';

export const DOMAIN_DIR_LABEL = 'domain-dir';

/** What the destination answers on the stream after receiving. */
export interface MigrationAnswer {
  ok: boolean;
  error?: string;
  startedAt?: string;
}

async function tarExit(child: ReturnType<typeof spawn>, what: string, stderr: () => string): Promise<void> {
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  if (code !== 0) throw new Error(`${what} failed (${signal ?? `exit ${code}`}): ${stderr().trim()}`);
}

function collectStderr(child: ReturnType<typeof spawn>): () => string {
  let text = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (text.length < 4096) text += d.toString();
  });
  return () => text;
}

/** Sends `dir` (without its run/ state) down `stream` and half-closes it; resolves the bytes sent. */
export async function sendDomainDir(dir: string, stream: Duplex, signal?: AbortSignal): Promise<number> {
  const tar = spawn('tar', ['-C', dir, '-cf', '-', '--exclude=./run', '.'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    signal,
  });
  const stderr = collectStderr(tar);
  let bytes = 0;
  tar.stdout.on('data', (d: Buffer) => {
    bytes += d.length;
  });
  tar.stdout.pipe(stream, { end: true });
  await Promise.all([tarExit(tar, `tar of ${dir}`, stderr), finished(stream, { readable: false, signal })]);
  return bytes;
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

/** Extracts the tar stream into `dir` (which must exist and be empty). */
export async function receiveDomainDir(stream: Duplex, dir: string, signal?: AbortSignal): Promise<void> {
  const tar = spawn('tar', ['-C', dir, '-xf', '-', '--no-same-owner'], {
    stdio: ['pipe', 'ignore', 'pipe'],
    signal,
  });
  const stderr = collectStderr(tar);
  stream.pipe(tar.stdin);
  await tarExit(tar, `extracting into ${dir}`, stderr);
}

export async function writeAnswer(stream: Duplex, answer: MigrationAnswer): Promise<void> {
  stream.end(`${JSON.stringify(answer)}\n`);
  await finished(stream, { readable: false }).catch(() => {});
}
