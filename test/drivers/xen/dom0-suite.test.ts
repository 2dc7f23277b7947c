// Runs the tests of test/xen-dom0/ inside dom0 of the test Xen host (scripts/xen/xen-host.ts), with this
// repository shared into it over 9p: vitest on dom0's node, against the real hypervisor and toolstack.
// Their own report comes back on the console; this test passes when all of them pass there.

import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { ensureXenHost, type XenHostImage } from '../../../scripts/xen/xen-host.ts';
import { runOnXenHost } from './xen-host.ts';

const REPO = join(import.meta.dirname, '..', '..', '..');
let host: XenHostImage;
beforeAll(async () => {
  host = await ensureXenHost({ log: (l) => console.log(l) });
}, 20 * 60_000);

it(
  'passes the dom0 tests (test/xen-dom0/) on a real Xen host',
  async () => {
    const result = await runOnXenHost(
      host,
      {
        share: REPO,
        script: `#!/bin/sh
cd /xenos || { echo "XENOS-TEST: FAIL no /xenos share"; exit 1; }
HOME=/tmp NO_COLOR=1 node node_modules/vitest/vitest.mjs run --config test/xen-dom0/vitest.config.ts --reporter=verbose \\
  > /tmp/vitest.log 2>&1
status=$?
sed 's/^/XENOS-TEST: /' /tmp/vitest.log
exit $status
`,
      },
      10 * 60_000,
    );
    const report = result.said.join('\n');
    console.log(report.replace(/^/gm, '  dom0: '));
    expect(result.status, `${report}\n--- console tail:\n${result.console.slice(-2000)}`).toBe(0);
    expect(report).toMatch(/Tests\s+\d+ passed/);
    expect(report).not.toMatch(/skipped|failed/);
  },
  20 * 60_000,
);
