// The readers of `xl list` and `xl list -l` (src/drivers/xen/xl-list.ts) on what they must refuse and on
// every state letter; test/drivers/xen/xen-host.test.ts holds them to the real xl's output on a Xen host.

import { describe, expect, it } from 'vitest';
import { domainState, parseXlList, parseXlListLong } from '../../../src/drivers/xen/xl-list.ts';

const HEADER = 'Name                                        ID   Mem VCPUs\tState\tTime(s)';

describe('xl list readers', () => {
  it('reads rows, dom0 included, and refuses output that is not the table', () => {
    const text = `${HEADER}\nDomain-0                                     0   512     1     r-----      12.5\nweb  3   128     1     -b----       0.9\n`;
    expect(parseXlList(text)).toEqual([
      { name: 'Domain-0', domid: 0, memoryMiB: 512, vcpus: 1, flags: 'r-----', cpuSeconds: 12.5 },
      { name: 'web', domid: 3, memoryMiB: 128, vcpus: 1, flags: '-b----', cpuSeconds: 0.9 },
    ]);
    expect(() => parseXlList('libxl: error: cannot init xl context\n')).toThrow(/no table header/);
    expect(() => parseXlList(`${HEADER}\nweb 3 128 1 zz 0.1\n`)).toThrow(/a row Xenos cannot read: "web 3/);
  });

  it('maps each state letter to a domain state', () => {
    expect(
      ['r-----', '-b----', '--p---', '---s--', '----c-', '-----d', '------', '---sc-'].map(domainState),
    ).toEqual(['running', 'running', 'running', 'stopped', 'crashed', 'stopped', 'unknown', 'crashed']);
  });

  it('reads xl list -l, and refuses entries without a domid or a name', () => {
    expect(parseXlListLong('')).toEqual([]);
    const one = [{ domid: 3, config: { c_info: { name: 'web', type: 'pvh' } } }];
    expect(parseXlListLong(JSON.stringify(one))).toEqual(one);
    expect(() => parseXlListLong('{}')).toThrow(/not print a JSON array/);
    expect(() => parseXlListLong('[{"config":{}}]')).toThrow(/entry 0 has no domid/);
  });
});
