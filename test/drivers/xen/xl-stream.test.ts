// The reader of `xl migrate`'s stream: it passes every byte on unchanged, in any chunking, and waits at
// libxl's END record (not libxc's, not a record whose body merely holds zeros) for its hook; a stream it
// cannot follow fails instead of going on unwatched.

import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { XlStreamWatch } from '../../../src/drivers/xen/xl-stream.ts';
import { xlStream } from './xl-fixtures.ts';

function chunks(bytes: Buffer, size: number): Buffer[] {
  const out = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

async function run(input: Buffer[], onEnd?: () => Promise<void>) {
  const out: Buffer[] = [];
  const seen: { at: string; passed: number }[] = [];
  const watch = new XlStreamWatch({
    atEnd: async () => {
      seen.push({ at: 'end', passed: Buffer.concat(out).length });
      await onEnd?.();
    },
    suspended: () => seen.push({ at: 'suspended', passed: watch.bytes }),
  });
  watch.on('data', (b: Buffer) => out.push(b));
  const done = new Promise<void>((resolve, reject) => watch.on('end', resolve).on('error', reject));
  Readable.from(input).pipe(watch);
  await done;
  return { out: Buffer.concat(out), seen };
}

describe('XlStreamWatch', () => {
  const { bytes, endAt } = xlStream();

  for (const size of [1, 3, 8, 61, 4096, bytes.length]) {
    it(`passes the stream on whole and waits exactly at libxl's END (chunks of ${size})`, async () => {
      const { out, seen } = await run(chunks(bytes, size));
      expect(out.equals(bytes)).toBe(true);
      const end = seen.find((s) => s.at === 'end');
      // Everything before the END record went on before the hook, and of the record itself at most what
      // came in earlier chunks (half a record header tells the reader nothing).
      expect(end!.passed).toBeGreaterThanOrEqual(endAt);
      expect(end!.passed).toBeLessThan(endAt + 8);
      expect(seen.filter((s) => s.at === 'end')).toHaveLength(1);
      expect(seen.find((s) => s.at === 'suspended')).toBeDefined();
    });
  }

  it('holds the rest until the hook resolves', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const out: Buffer[] = [];
    const watch = new XlStreamWatch({ atEnd: () => held });
    watch.on('data', (b: Buffer) => out.push(b));
    watch.write(bytes);
    await new Promise((r) => setTimeout(r, 20));
    expect(Buffer.concat(out).length).toBe(endAt);
    release();
    watch.end();
    await new Promise((r) => watch.on('end', r));
    expect(Buffer.concat(out).equals(bytes)).toBe(true);
  });

  it('fails the stream when the hook fails', async () => {
    await expect(
      run([bytes], async () => {
        throw new Error('the disk copy failed');
      }),
    ).rejects.toThrow('the disk copy failed');
  });

  it('refuses a stream it cannot follow', async () => {
    await expect(run([Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'.padEnd(64, 'x'))])).rejects.toThrow(
      /cannot be followed: no xl header/,
    );
    const broken = Buffer.from(bytes);
    broken.write('NotLibxl', 48 + 4 + 40, 'latin1');
    await expect(run([broken])).rejects.toThrow(/no libxl header/);
    const huge = Buffer.from(bytes);
    huge.writeUInt32LE(0x7fffffff, 48 + 4 + 40 + 16 + 8 + 40 + 4);
    await expect(run([huge])).rejects.toThrow(/claims 2147483647 bytes/);
  });
});
