// Inside dom0 of a real Xen host: what `xenosd --driver auto` sees there (probeXen: a control domain whose
// `xl info` answers), and the Xen driver's readers of `xl list` and `xl list -l` on the live toolstack.

import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { probeXen, selectDriver } from '../../src/drivers/registry.ts';
import { domainState, parseXlList, parseXlListLong } from '../../src/drivers/xen/xl-list.ts';

describe('the Xen toolstack, from inside dom0', () => {
  it('is found usable by the driver probe', async () => {
    expect(await probeXen()).toEqual({ usable: true });
  });

  it('is what xenosd --driver auto picks', async () => {
    const { driver, notChosen } = await selectDriver('auto', { dataDir: '/tmp/xenos-auto' });
    expect(driver.name).toBe('xen');
    expect(notChosen).toEqual([]);
    await driver.stop();
  });

  it('lists dom0 running, through the readers of xl list and xl list -l', () => {
    const rows = parseXlList(execFileSync('xl', ['list'], { encoding: 'utf8' }));
    const dom0 = rows.find((r) => r.domid === 0);
    expect(dom0).toMatchObject({ name: 'Domain-0', vcpus: 1 });
    expect(domainState(dom0!.flags)).toBe('running');
    expect(Array.isArray(parseXlListLong(execFileSync('xl', ['list', '-l'], { encoding: 'utf8' })))).toBe(
      true,
    );
  });
});
