// Test runner settings: tests mirror src/ under test/; end-to-end tests start real xenosd processes,
// so files get generous timeouts and run in separate forked processes (at most two at once: CI has 2 cores).
//
// Two groups, one after the other. The tests that boot nested Xen hosts under QEMU (TCG, two vCPUs each,
// for 10-25 minutes) run last, by themselves: beside them the rest of the suite ran 2-3 times slower, and
// tests with a real guest or a timing bound failed for want of CPU, while the Xen tests' own pauses grew
// from 16 s to 44 s. Alone, each group gets the machine.
import { defineConfig } from 'vitest/config';

/** The tests that boot a Xen host under QEMU (test/drivers/xen/xen-host.ts); one at a time in any case. */
const XEN_HOST_TESTS = [
  'test/drivers/xen/xen-host.test.ts',
  'test/drivers/xen/dom0-suite.test.ts',
  'test/drivers/xen/two-hosts.test.ts',
];

export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    // node:sqlite is stable enough for us but still flagged experimental in Node 22: keep the noise out.
    execArgv: ['--disable-warning=ExperimentalWarning'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'host',
          include: ['test/**/*.test.ts'],
          // Tests that need a Xen dom0 run inside the test Xen host (test/drivers/xen/dom0-suite.test.ts boots
          // it and runs them there with test/xen-dom0/vitest.config.ts), never on the host itself.
          exclude: ['test/xen-dom0/**', '**/node_modules/**', ...XEN_HOST_TESTS],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'xen-hosts', include: XEN_HOST_TESTS, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
