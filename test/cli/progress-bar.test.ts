// The progress display: the line it draws (bar, percent, bytes, rate, peers; shrinking to the terminal),
// redrawn in place on a terminal; without one, a plain line at most every few seconds and the last state
// at the end; the rate from the samples' own times, starting over when a pull restarts.

import { describe, expect, it } from 'vitest';
import { formatBytes, ProgressBar, renderLine } from '../../src/cli/progress-bar.ts';

const MiB = 1024 * 1024;

function output(tty: boolean, columns = 100) {
  let clock = 0;
  const out = {
    text: '',
    tty,
    columns,
    now: () => clock,
    write: (t: string) => {
      out.text += t;
    },
  };
  return {
    out,
    tick: (ms: number) => {
      clock += ms;
    },
  };
}

describe('progress bar', () => {
  it('draws a bar, the percentage, bytes, rate and peers, and fits the width', () => {
    const line = renderLine('pull', { bytes: 64 * MiB, size: 256 * MiB, holders: 3 }, 12.5 * MiB, 100);
    expect(line).toBe(
      `pull [##########..............................]  25%  64.0 MiB/256.0 MiB  12.5 MiB/s  from 3 peers`,
    );
    expect(renderLine('pull', { bytes: 1, size: 1, holders: 1 }, undefined, 100)).toMatch(
      /100%.*from 1 peer$/,
    );
    const narrow = renderLine('pull', { bytes: 64 * MiB, size: 256 * MiB }, undefined, 30);
    expect(narrow).toBe('pull   25%  64.0 MiB/256.0 MiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(0)).toBe('0 B');
  });

  it('redraws one line in place on a terminal and ends it with a newline', () => {
    const { out, tick } = output(true);
    const bar = new ProgressBar(out, { label: 'pull' });
    bar.update({ bytes: 0, size: 100 * MiB, holders: 2 });
    tick(1000);
    bar.update({ bytes: 10 * MiB, size: 100 * MiB, holders: 2 });
    bar.done('pulled');
    const frames = out.text.split('\r').filter(Boolean);
    expect(frames).toHaveLength(3);
    expect(frames[1]).toMatch(/ 10%.*10\.0 MiB\/s.*from 2 peers/);
    expect(frames[1].endsWith('\x1b[K')).toBe(true);
    expect(out.text.endsWith('\npulled\n')).toBe(true);
    expect(out.text.split('\n')).toHaveLength(3);
  });

  it('without a terminal prints a plain line every few seconds and the last state at the end', () => {
    const { out, tick } = output(false);
    const bar = new ProgressBar(out, { label: 'pull', plainEveryMs: 5000 });
    for (let i = 1; i <= 12; i++) {
      tick(1000);
      bar.update({ bytes: i * MiB, size: 12 * MiB });
    }
    bar.done();
    const lines = out.text.trimEnd().split('\n');
    expect(out.text.includes('\r') || out.text.includes('\x1b')).toBe(false);
    // At 1 s, 6 s, 11 s, and the last state (12 s) at the end.
    expect(lines.map((l) => /(\d+)%/.exec(l)?.[1])).toEqual(['8', '50', '91', '100']);
    expect(lines.at(-1)).toMatch(/1\.0 MiB\/s/);
  });

  it('measures the rate from the samples’ times and starts over when the bytes go back', () => {
    const { out } = output(false);
    const bar = new ProgressBar(out, { label: 'pull' });
    bar.update({ bytes: 0, size: 100, at: 10_000 });
    expect(bar.rate()).toBeUndefined();
    bar.update({ bytes: 50, size: 100, at: 12_000 });
    expect(bar.rate()).toBe(25);
    bar.update({ bytes: 10, size: 100, at: 13_000 }); // the pull restarted
    expect(bar.rate()).toBeUndefined();
    bar.update({ bytes: 30, size: 100, at: 14_000 });
    expect(bar.rate()).toBe(20);
  });
});
