// The domain directory's tar stream, received: tar finishes at the archive's end marker, often before the
// sender's half-close arrives; that must not fail the receive, and the stream must stay open for the answer.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { readAnswer, receiveDomainDir, writeAnswer } from '../../src/drivers/process/cold-migration.ts';

/** Two ends of an in-memory byte pipe, like a libp2p stream's. */
function streamPair(): [Duplex, Duplex] {
  const ab = new PassThrough();
  const ba = new PassThrough();
  // An end destroyed with an error passes it to these halves; the ends' own listeners report it.
  for (const half of [ab, ba]) half.on('error', () => {});
  const ends: [Duplex, Duplex] = [
    Duplex.from({ readable: ba, writable: ab }),
    Duplex.from({ readable: ab, writable: ba }),
  ];
  ends[0].on('error', () => {}); // the sender hears a broken link too; only the receive is under test
  return ends;
}

async function tarOf(dir: string): Promise<Buffer> {
  const tar = spawn('tar', ['-C', dir, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  for await (const c of tar.stdout) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('receiving a domain directory', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  async function tmp(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), 'xenos-dir-stream-'));
    dirs.push(d);
    return d;
  }

  it('takes an archive whose end comes well after tar is done, and answers on the same stream', {
    timeout: 10_000,
  }, async () => {
    const from = await tmp();
    await mkdir(join(from, 'rootfs'));
    await writeFile(join(from, 'rootfs', 'state'), 'kept');
    const archive = await tarOf(from);
    const into = await tmp();
    const [sender, receiver] = streamPair();
    const received = receiveDomainDir(receiver, into);
    sender.write(archive);
    // Tar reads the end marker and exits long before this half-close.
    await new Promise((r) => setTimeout(r, 400));
    sender.end();
    await received;
    expect(await readFile(join(into, 'rootfs', 'state'), 'utf8')).toBe('kept');
    await writeAnswer(receiver, { ok: true });
    expect(await readAnswer(sender)).toEqual({ ok: true });
  });

  it('fails, and stops tar, when the stream breaks before the archive is whole', async () => {
    const from = await tmp();
    await writeFile(join(from, 'big'), Buffer.alloc(256 * 1024, 7));
    const archive = await tarOf(from);
    const [sender, receiver] = streamPair();
    receiver.on('error', () => {}); // as the driver does: the error surfaces through the receive
    const received = receiveDomainDir(receiver, await tmp());
    sender.write(archive.subarray(0, 64 * 1024));
    receiver.destroy(new Error('link broken'));
    await expect(received).rejects.toThrow(/link broken/);
  });
});
