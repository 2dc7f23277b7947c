// Test runner settings: tests mirror src/ under test/; end-to-end tests start real xenosd processes,
// so files get generous timeouts and run in separate forked processes (at most two at once: CI has 2 cores).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests that need a Xen dom0 run inside the test Xen host (test/drivers/xen/dom0-suite.test.ts boots it
    // and runs them there with test/xen-dom0/vitest.config.ts), never on the host itself.
    exclude: ['test/xen-dom0/**', '**/node_modules/**'],
    pool: 'forks',
    maxWorkers: 2,
    // node:sqlite is stable enough for us but still flagged experimental in Node 22: keep the noise out.
    execArgv: ['--disable-warning=ExperimentalWarning'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
