// xenosd bounds its own heap (src/daemon/heap-bound.ts): a real xenosd runs, under the same pid, with
// --max-old-space-size set to the default, to --max-heap's value, or not at all when the user chose a
// bound in NODE_OPTIONS or asked for V8's default with --max-heap 0.

import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_HEAP_MIB } from '../../src/daemon/heap-bound.ts';
import { removeDataDir, startXenosd, type XenosdProcess } from './xenosd-process.ts';

const started: XenosdProcess[] = [];
afterEach(async () => {
  for (const xd of started.splice(0)) {
    await xd.stop();
    removeDataDir(xd.dataDir);
  }
});

/** The command line the daemon's pid runs now (after any re-exec). */
async function commandLineOf(args: string[]): Promise<string[]> {
  const xd = await startXenosd({ args });
  started.push(xd);
  return readFileSync(`/proc/${xd.child.pid}/cmdline`, 'utf8').split('\0');
}

describe('xenosd heap bound', () => {
  it('runs with the default bound, under the pid it was started with', async () => {
    expect(await commandLineOf([])).toContain(`--max-old-space-size=${DEFAULT_MAX_HEAP_MIB}`);
  });

  it('takes --max-heap, and --max-heap 0 leaves V8 its own default', async () => {
    expect(await commandLineOf(['--max-heap', '128'])).toContain('--max-old-space-size=128');
    expect((await commandLineOf(['--max-heap', '0'])).join(' ')).not.toContain('--max-old-space-size');
  });

  it('leaves a bound chosen in NODE_OPTIONS alone', async () => {
    const before = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = '--max-old-space-size=300';
    try {
      expect((await commandLineOf([])).join(' ')).not.toContain('--max-old-space-size');
    } finally {
      if (before === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = before;
    }
  });
});
