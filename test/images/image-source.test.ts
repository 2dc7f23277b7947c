// The rule for writing image progress into a status (src/images/image-source.ts): the first report goes at
// once, then one every 2 s or every 5 %, the finishing one always, and what was held back at flush().

import { describe, expect, it } from 'vitest';
import { type ImageProgress, progressThrottle } from '../../src/images/image-source.ts';

const at = (percent: number): ImageProgress => ({
  digest: 'd',
  bytes: percent,
  size: 100,
  percent,
  holders: 2,
});

describe('progressThrottle', () => {
  it('writes the first report, then at most every 2 s or 5 %, and always 100 %', () => {
    let t = 0;
    const written: number[] = [];
    const p = progressThrottle((x) => written.push(x.percent), { now: () => t });
    p.report(at(0));
    p.report(at(1));
    p.report(at(4));
    expect(written).toEqual([0]);
    p.report(at(5)); // 5 % since the last write
    expect(written).toEqual([0, 5]);
    t += 1999;
    p.report(at(6));
    expect(written).toEqual([0, 5]);
    t += 1;
    p.report(at(7)); // 2 s since the last write
    expect(written).toEqual([0, 5, 7]);
    p.report(at(8));
    p.report(at(100));
    expect(written).toEqual([0, 5, 7, 100]);
  });

  it('writes what it held back at flush, and nothing when nothing was held', () => {
    const written: number[] = [];
    const p = progressThrottle((x) => written.push(x.percent), { now: () => 0 });
    p.report(at(10));
    p.report(at(11));
    p.flush();
    expect(written).toEqual([10, 11]);
    p.flush();
    expect(written).toEqual([10, 11]);
  });
});
