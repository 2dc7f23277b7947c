// The helper `xl migrate` runs in place of ssh (`sh -c` of helperRune): its stdin goes to xenosd's unix
// socket and what the socket sends comes out on its stdout, both ways to the end; it exits when the socket
// ends, even with xl's end of its stdin still open (xl waits for the destination's answer so, and reads the
// end only once the helper is gone); a socket that is not there makes it fail loudly (xl then gives up and
// resumes the source).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { helperRune } from '../../../src/drivers/xen/live-migration.ts';

const dir = mkdtempSync(join(tmpdir(), 'xenos-helper-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runRune(rune: string, input: Buffer): Promise<{ code: number | null; out: Buffer; err: string }> {
  const child = spawn('sh', ['-c', rune], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => (err += b));
  child.stdin.end(input);
  return new Promise((resolve) =>
    child.on('close', (code) => resolve({ code, out: Buffer.concat(out), err })),
  );
}

it('joins its stdin and stdout to the socket, both ways to the end', async () => {
  const socket = join(dir, 'tunnel');
  const got: Buffer[] = [];
  const server = createServer({ allowHalfOpen: true }, (conn) => {
    conn.write('xl migration receiver ready\n');
    conn.on('data', (b: Buffer) => got.push(b));
    // The sender's end first, then the answer: the helper keeps its stdout open after its stdin ended.
    conn.on('end', () => setTimeout(() => conn.end('done\n'), 50));
  });
  await new Promise<void>((r) => server.listen(socket, r));
  const input = Buffer.alloc(3 * 1024 * 1024, 7);
  const { code, out } = await runRune(helperRune(socket), input);
  server.close();
  expect(code).toBe(0);
  expect(Buffer.concat(got).equals(input)).toBe(true);
  expect(out.toString()).toBe('xl migration receiver ready\ndone\n');
});

it('exits when the socket ends, though xl still holds its stdin open', async () => {
  const socket = join(dir, 'early');
  const server = createServer({ allowHalfOpen: true }, (conn) => conn.end('migration receiver failed\n'));
  await new Promise<void>((r) => server.listen(socket, r));
  const child = spawn('sh', ['-c', helperRune(socket)], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.write('the stream, not ended');
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b));
  const code = await new Promise((resolve) => child.on('close', resolve));
  server.close();
  expect(code).toBe(0);
  expect(out).toBe('migration receiver failed\n');
});

it('fails when the socket is not there, and refuses what it cannot quote', async () => {
  const { code, err } = await runRune(helperRune(join(dir, 'nothing')), Buffer.alloc(0));
  expect(code).toBe(1);
  expect(err).toMatch(/xenos migration helper: .*ENOENT/);
  expect(() => helperRune("/tmp/it's")).toThrow(/cannot quote/);
});
