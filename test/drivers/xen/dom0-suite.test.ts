// Runs the tests of test/xen-dom0/ inside dom0 of the test Xen host (scripts/xen/xen-host.ts), with this
// repository shared into it over 9p: vitest on dom0's node, against the real hypervisor and toolstack.
// Their own report comes back on the console; this test passes when all of them pass there.

import { beforeAll, expect, it } from 'vitest';
import { ensureXenHost, type XenHostImage } from '../../../scripts/xen/xen-host.ts';
import { guestImageInDom0, REPO, runOnXenHost, XEN_RUN_WAIT_MS } from './xen-host.ts';

/** Extra vitest arguments for dom0 (a file or `-t NAME`, to run part of the suite while working on it). */
const DOM0_ARGS = process.env.XENOS_DOM0_VITEST_ARGS ?? '';
/** Each case boots guests under two levels of emulation (Xen under TCG, the guest under Xen). */
const SUITE_MS = 30 * 60_000;
let host: XenHostImage;
/** The demo guest's image as dom0 sees it: inside the shared repository. */
let guestInDom0: string;
beforeAll(async () => {
  host = await ensureXenHost({ log: (l) => console.log(l) });
  guestInDom0 = await guestImageInDom0();
}, 20 * 60_000);

it(
  'passes the dom0 tests (test/xen-dom0/) on a real Xen host',
  async () => {
    const result = await runOnXenHost(
      host,
      {
        share: REPO,
        // Data directories (xenosd's image store, the domains' overlays) on the test disk, not in dom0's memory.
        spareMiB: 2048,
        script: `#!/bin/sh
cd /xenos || { echo "XENOS-TEST: FAIL no /xenos share"; exit 1; }
mkdir -p /test/tmp
# vitest's report line by line as it comes (its status through a file: sh has no pipefail).
{
  HOME=/tmp TMPDIR=/test/tmp NO_COLOR=1 XENOS_GUEST_DIR=${guestInDom0} \\
    node node_modules/vitest/vitest.mjs run --config test/xen-dom0/vitest.config.ts --reporter=verbose ${DOM0_ARGS} 2>&1
  echo $? > /tmp/vitest.status
} | sed -u 's/^/XENOS-TEST: /'
status=$(cat /tmp/vitest.status)
[ "$status" = 0 ] || { free -m; dmesg | grep -i -A3 'out of memory|killed process' | tail -20; } | sed 's/^/XENOS-TEST: /'
exit "$status"
`,
      },
      SUITE_MS,
    );
    const report = result.said.join('\n');
    console.log(report.replace(/^/gm, '  dom0: '));
    expect(result.status, `${report}\n--- console tail:\n${result.console.slice(-2000)}`).toBe(0);
    expect(report).toMatch(/Tests\s+\d+ passed/);
    expect(report).not.toMatch(/skipped|failed/);
  },
  SUITE_MS + XEN_RUN_WAIT_MS + 60_000,
);
